"""Type hints of the compiled ``weightflow._native`` module (arrays cross as (dtype, shape, bytes))."""

from typing import List, Optional, Tuple

class WeightflowError(Exception): ...

class Detector:
    @staticmethod
    def fit(
        method: str,
        sizes: List[int],
        model: Optional[str] = None,
        meta: Optional[str] = None,
        reference_spec: Optional[str] = None,
        reference_array: Optional[Tuple[str, List[int], bytes]] = None,
        n_reference: int = 300,
        null_runs: int = 20,
        alpha: float = 0.05,
        model_seed: int = 0,
        threads: Optional[int] = None,
        quiet: bool = True,
    ) -> "Detector": ...
    @staticmethod
    def load(dir: str, threads: Optional[int] = None) -> "Detector": ...
    def save(self, dir: str) -> None: ...
    def test(self, dtype: str, shape: List[int], data: bytes, seed: int = 0) -> str: ...
    def config_json(self) -> str: ...

class MetaModel:
    @staticmethod
    def load(dir: str) -> "MetaModel": ...
    def sample(
        self, dtype: str, shape: List[int], data: bytes, n: int, seed: int = 0, steps: Optional[int] = None
    ) -> Tuple[bytes, int]: ...
    def arch_json(self) -> str: ...
    def normalization_json(self) -> str: ...

def state_dict_layout(arch: str = "cnn3", in_ch: int = 3, classes: int = 10) -> List[Tuple[str, List[int], int]]: ...
def version() -> str: ...
def save_model(
    path: str,
    weights: bytes,
    arch: str = "cnn3",
    in_ch: int = 3,
    classes: int = 10,
    mean: List[float] = ...,
    std: List[float] = ...,
) -> None: ...
