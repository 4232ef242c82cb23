from django.contrib import admin

from annotations.models import Annotation


@admin.register(Annotation)
class AnnotationAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "kind", "label", "author", "frame", "version", "deleted", "updated_at")
    list_filter = ("project", "kind", "deleted")
    search_fields = ("label", "author__username", "instance__sop_instance_uid")
    raw_id_fields = ("instance",)
    readonly_fields = ("measurements", "version", "created_at", "updated_at")
