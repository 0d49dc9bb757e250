"""Help > About: what a support desk asks first when something is wrong (which version, which
server, where the data lives) and the licence."""

from .dialog import LICENCE, about_lines, show_about

__all__ = ["LICENCE", "about_lines", "show_about"]
