"""What every item model of the desktop shares.

:class:`RolesInOneCall`: Qt's item delegates ask a cell for its roles together
(``QModelIndex.multiData``: display, alignment, colours, font, check state, decoration). The
base class answers by calling ``data()`` once per role, each a separate entry into Python from
C++ that must take the interpreter lock. While another thread runs Python (a pull being applied,
a dashboard being computed), every entry can wait for that lock, and a repaint of a table makes
about a thousand of them. Answering the roles in one call makes it one entry per cell, with the
same values ``data()`` gives (docs/performance.md, "one entry per cell").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

from PySide6.QtCore import QModelIndex, QModelRoleData, QModelRoleDataSpan, QPersistentModelIndex

__all__ = ["RolesInOneCall"]

if TYPE_CHECKING:
    from PySide6.QtCore import QAbstractItemModel as _Model
else:
    _Model = object


class RolesInOneCall(_Model):
    """Mixed into a Qt item model before its Qt base: ``multiData`` through ``data``."""

    def multiData(
        self,
        index: QModelIndex | QPersistentModelIndex,
        roleDataSpan: QModelRoleDataSpan | QModelRoleData,
    ) -> None:
        data = self.data
        if isinstance(roleDataSpan, QModelRoleData):
            roleDataSpan.setData(data(index, roleDataSpan.role()))
            return
        # A sequence at run time (len and indexing); the stubs do not say so.
        for role_data in cast(Sequence[QModelRoleData], roleDataSpan):
            role_data.setData(data(index, role_data.role()))
