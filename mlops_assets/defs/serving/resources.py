"""The bento builder resource: where the bento store lives and which source tree the bento packages."""

from pathlib import Path

import dagster as dg

import mlops_assets
from mlops_assets.lib.bento_build import BuiltBento, build_bento, export_bento
from mlops_assets.settings import Settings


class BentoBuilder(dg.ConfigurableResource):
    """Builds the serving bento into ``store_dir`` (BentoML's store, its ``BENTOML_HOME``) from ``build_ctx``."""

    store_dir: str
    build_ctx: str

    @classmethod
    def from_settings(cls, settings: Settings) -> "BentoBuilder":
        # The directory above the installed package: the repository in a checkout or the image's /app.
        return cls(
            store_dir=str(settings.data_dir / "bentoml"), build_ctx=str(Path(mlops_assets.__file__).parent.parent)
        )

    def build(self, labels: dict[str, str]) -> BuiltBento:
        return build_bento(Path(self.build_ctx), Path(self.store_dir), labels)

    def export(self, bento: BuiltBento, destination: str) -> int:
        return export_bento(bento, Path(self.store_dir), destination)
