"""The Automations pages (namespace `automations`; the dashboard's nav shows `automations:list`)."""

from django.urls import path

from automations import views

app_name = "automations"

urlpatterns = [
    path("automations/", views.AutomationListView.as_view(), name="list"),
    path("automations/new/", views.BuilderView.as_view(), name="new"),
    path("automations/reorder/", views.ReorderView.as_view(), name="reorder"),
    path("automations/runs/", views.RunListView.as_view(), name="runs"),
    path("automations/runs/<str:pk>/", views.RunDetailView.as_view(), name="run"),
    path("automations/runs/<str:pk>/cancel/", views.RunCancelView.as_view(), name="run_cancel"),
    path("automations/<str:pk>/", views.AutomationDetailView.as_view(), name="detail"),
    path("automations/<str:pk>/edit/", views.BuilderView.as_view(), name="edit"),
    path("automations/<str:pk>/move/", views.MoveView.as_view(), name="move"),
    path("automations/<str:pk>/toggle/", views.ToggleView.as_view(), name="toggle"),
    path("automations/<str:pk>/delete/", views.DeleteView.as_view(), name="delete"),
]
