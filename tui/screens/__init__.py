"""Dialogs (ModalScreen[T], answered through ``dismiss``)."""
