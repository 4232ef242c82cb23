from django.apps import AppConfig


class CollabConfig(AppConfig):
    name = "collab"
    verbose_name = "Reading sessions"

    def ready(self) -> None:
        # Connects the receivers that close the connections of a seat, membership or account taken away
        # (collab.services.lost_access, imported by the package).
        from collab import services  # noqa: F401
