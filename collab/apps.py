from django.apps import AppConfig


class CollabConfig(AppConfig):
    name = "collab"
    verbose_name = "Reading sessions"

    def ready(self) -> None:
        # Connects the receivers that close the connections of a seat, membership or account taken away
        # (collab.services.lost_access, imported by the package).
        from collab import services  # noqa: F401
        # A broken call configuration stops the process at start-up, not at the first call.
        from django.core.exceptions import ImproperlyConfigured

        from collab.ice import check_config
        from crossread.conf import option

        try:
            check_config(option("ICE_SERVERS"), option("TURN_SECRET"))
        except ValueError as exc:
            raise ImproperlyConfigured(f"CROSSREAD_ICE_SERVERS: {exc}") from None
