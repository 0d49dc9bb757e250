"""The PySide6 desktop: the only layer that imports Qt."""
