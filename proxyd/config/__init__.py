"""Settings: every knob proxyd reads from the environment and a .env file."""

from proxyd.config.settings import Settings, SettingsError, load_settings

__all__ = ["Settings", "SettingsError", "load_settings"]
