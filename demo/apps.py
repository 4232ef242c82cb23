from django.apps import AppConfig


class DemoConfig(AppConfig):
    """Demo and test data, kept out of the production apps: the synthetic phantom CT, the finder of
    the public DICOM corpora, the synthetic slide, and the commands that load them."""

    name = "demo"
    verbose_name = "Demo data"
