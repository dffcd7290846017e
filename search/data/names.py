"""Names of the built-in data sets, importable without torch (the CLI's option defaults use them)."""

#: names of the generated data sets (anything else is read as a folder path)
GENERATED: tuple[str, ...] = ("digit-actions", "digit-order", "moving-digits")
#: the task `vidlat search`, `train` and `run` use unless told otherwise (accuracy depends on the arch:
#: the fastest arch of the default space is far under x3d-xs; moving-digits is for smoke runs)
DEFAULT_DATA = "digit-order"
#: help text of every `--data` option
DATA_HELP = f"a generated task ({', '.join(GENERATED)}) or a folder of class sub-folders of .mp4/.avi clips"
