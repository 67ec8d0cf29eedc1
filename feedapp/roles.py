"""Who may do what in the console and its CLI twin: roles and their scope, checked on the server for every object.

admin: everything, staff accounts and branding included. editor: content and sources, of the whole
company, or of one office only when the account has an office. staff: reads. The command line acts
as an admin named "cli".
"""

from __future__ import annotations

from dataclasses import dataclass

from feedapp.models import ROLE_ADMIN, ROLE_EDITOR, ROLES


class Forbidden(Exception):
    """An action outside the actor's role or scope (the console answers 403, the CLI exits non-zero)."""


class HasRole:
    """is_admin and is_editor from a `role` attribute (Actor, and the signed-in CurrentUser)."""

    role: str

    @property
    def is_admin(self) -> bool:
        """May do everything."""
        return self.role == ROLE_ADMIN

    @property
    def is_editor(self) -> bool:
        """May use the console's content and sources areas (admins too)."""
        return self.role in (ROLE_ADMIN, ROLE_EDITOR)


@dataclass(frozen=True)
class Actor(HasRole):
    """The person (or the CLI) doing a console action: name for the audit, role and office for the checks."""

    name: str
    role: str
    office_id: int | None = None  # an editor's office: that office only; None: the whole company

    @classmethod
    def cli(cls) -> Actor:
        """The command line: an admin, audited as "cli"."""
        return cls("cli", ROLE_ADMIN)

    @classmethod
    def of(cls, user) -> Actor:
        """The actor of a User (or the signed-in CurrentUser): its username, role and office."""
        return cls(user.username, user.role, user.office_id)

    @property
    def office_only(self) -> bool:
        """An editor limited to one office."""
        return self.role == ROLE_EDITOR and self.office_id is not None

    def may_edit(self, office_id: int | None) -> bool:
        """Whether the actor may change content or sources of this office (None: company-wide)."""
        if self.is_admin:
            return True
        if self.role != ROLE_EDITOR:
            return False
        return self.office_id is None or self.office_id == office_id

    def check(self, office_id: int | None) -> None:
        """Raise Forbidden unless the actor may change content or sources of this office (None: company-wide)."""
        if not self.may_edit(office_id):
            raise Forbidden("outside your office" if self.office_only else "editors and admins only")

    def check_admin(self) -> None:
        """Raise Forbidden unless the actor is an admin."""
        if not self.is_admin:
            raise Forbidden("admins only")


def valid_role(role: str) -> str:
    """role, checked against the known roles (ValueError otherwise)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    return role
