from django.apps import AppConfig


class CollabConfig(AppConfig):
    name = "collab"
    verbose_name = "Reading sessions"

    def ready(self) -> None:
        # Connects the receiver of annotations.services.annotation_event (session broadcasts).
        from collab import services  # noqa: F401
