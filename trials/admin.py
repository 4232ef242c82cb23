from django.contrib import admin

from trials.models import Adjudication, Read, Subject, Trial, TrialTimepoint


@admin.register(Trial)
class TrialAdmin(admin.ModelAdmin):
    list_display = ("name", "project", "double_read", "confirmation_required", "targets_by_length")


@admin.register(Subject)
class SubjectAdmin(admin.ModelAdmin):
    list_display = ("label", "trial", "patient_id")


@admin.register(TrialTimepoint)
class TrialTimepointAdmin(admin.ModelAdmin):
    list_display = ("subject", "label", "order", "date", "modality")


@admin.register(Read)
class ReadAdmin(admin.ModelAdmin):
    list_display = ("subject", "reader", "status", "signed_at")
    readonly_fields = ("result", "sr_instances")


@admin.register(Adjudication)
class AdjudicationAdmin(admin.ModelAdmin):
    list_display = ("subject", "chosen_read", "adjudicator", "created_at")
