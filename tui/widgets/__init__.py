"""Widgets of the main screen: sidebar, chat view, prompt input and status bar."""
