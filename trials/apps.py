from django.apps import AppConfig


class TrialsConfig(AppConfig):
    name = "trials"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from trials import blinding
        from viewer.access import register_blinding

        register_blinding(blinding.load_blinding)
        blinding.connect()
