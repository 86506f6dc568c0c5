"""The serving resources: where the bento store lives and which source tree the bento packages (BentoBuilder), and
the Docker engine the bento's image is built on and the registry it is pushed to (DockerEngine)."""

from pathlib import Path

import dagster as dg

import mlops_assets
from mlops_assets.lib.bento_build import (
    DEFAULT_BASE_IMAGE,
    DEFAULT_IMAGE_REPOSITORY,
    BuiltBento,
    BuiltImage,
    build_bento,
    check_engine,
    containerize_bento,
    ensure_bento,
    export_bento,
)
from mlops_assets.settings import Settings


class BentoBuilder(dg.ConfigurableResource):
    """Builds the serving bento into ``store_dir`` (BentoML's store, its ``BENTOML_HOME``) from ``build_ctx``; its
    Dockerfile starts from ``base_image`` (deploy/base-image.sh makes the default from Debian packages)."""

    store_dir: str
    build_ctx: str
    base_image: str = DEFAULT_BASE_IMAGE

    @classmethod
    def from_settings(cls, settings: Settings) -> "BentoBuilder":
        # The directory above the installed package: the repository in a checkout or the image's /app.
        return cls(
            store_dir=str(settings.data_dir / "bentoml"), build_ctx=str(Path(mlops_assets.__file__).parent.parent)
        )

    def build(self, labels: dict[str, str]) -> BuiltBento:
        return build_bento(Path(self.build_ctx), Path(self.store_dir), labels, self.base_image)

    def export(self, bento: BuiltBento, destination: str) -> int:
        return export_bento(bento, Path(self.store_dir), destination)

    def ensure(self, tag: str, archive: str) -> None:
        """The bento ``tag`` is in this store, imported from its lake ``archive`` when it was built elsewhere."""
        ensure_bento(tag, Path(self.store_dir), archive)


class DockerEngine(dg.ConfigurableResource):
    """A Docker engine at ``docker_host`` (``deploy/docker-engine.sh start DIR`` prints it) to build the serving image
    on, the image's ``repository``, and the ``registry`` (host:port) it is pushed to; empty ``registry``: not pushed,
    the image is pinned by its local id only."""

    docker_host: str = ""
    repository: str = DEFAULT_IMAGE_REPOSITORY
    registry: str = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> "DockerEngine":
        return cls(docker_host=settings.docker_host, registry=settings.image_registry)

    def check(self, base_image: str) -> None:
        check_engine(self.docker_host, base_image)

    def containerize(self, bento_tag: str, builder: BentoBuilder) -> BuiltImage:
        return containerize_bento(
            bento_tag, Path(builder.store_dir), self.docker_host, self.repository, builder.base_image, self.registry
        )
