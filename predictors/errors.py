"""Typed errors of the predictors; the CLI prints each as one line (see ``profiler.errors``)."""

from profiler.errors import VidlatError


class PredictorError(VidlatError):
    """A predictor cannot be built, fitted or applied with what it was given."""


class LUTMissError(PredictorError):
    """The lookup table holds no measurement for some workloads and no regressor was given."""

    def __init__(self, keys: list[str], device: str = "") -> None:
        self.keys = list(keys)
        shown = ", ".join(self.keys[:5]) + (f" ... ({len(self.keys) - 5} more)" if len(self.keys) > 5 else "")
        where = f" on device '{device}'" if device else ""
        super().__init__(
            f"lookup table has no measured latency{where} for {len(self.keys)} workload(s): {shown}; "
            "measure them with `vidlat profile` or fit a regressor with `vidlat fit`"
        )


class PredictorMismatchError(PredictorError):
    """A saved predictor was fitted for another device, space or feature set."""
