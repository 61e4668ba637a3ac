"""Component ``groups``: group membership in one table, ``group_members``.

Until this component, membership lived in two tables united at query time: ``access``'s
``user_groups`` (user name, group name; set with ``zhiku access user --groups`` and
``PUT /api/v1/admin/access/users/{name}``) and ``auth``'s ``auth_user_groups`` (user id,
group id, source; set by sign-in). Now every membership is one row of ``group_members``
(user, group of ``auth_groups``, source), owned by :mod:`zhiku.storage.groups`:

- ``source`` is ``local`` for a membership an administrator set (any admin path), or
  the identity provider (``ldap``, ``oidc:…``) whose sign-in reported it; a directory's
  re-sync replaces only its own rows. A membership held from two sources is two rows,
  so a directory dropping a group never removes what an administrator set.

Migration 1 moves both old tables over: every ``auth_user_groups`` row as it is, and every
``user_groups`` row of an existing user as a ``local`` membership of the group of that
name (created, with no role and no KBs, when missing). ``user_groups`` rows naming no
user (their account was deleted) are not carried: they applied to nobody, and kept they
would hand their groups to a future account of the same name.
"""

AFTER = ("core", "auth", "access")

MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE group_members(
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        group_id INTEGER NOT NULL REFERENCES auth_groups(id) ON DELETE CASCADE,
        source TEXT NOT NULL,
        PRIMARY KEY(user_id, group_id, source)
    );
    CREATE INDEX group_members_group ON group_members(group_id);
    INSERT INTO group_members(user_id, group_id, source)
        SELECT user_id, group_id, source FROM auth_user_groups;
    INSERT INTO auth_groups(name, created_at)
        SELECT ug.grp, MIN(u.created_at) FROM user_groups ug
        JOIN users u ON u.name=ug.user_name
        WHERE NOT EXISTS (SELECT 1 FROM auth_groups g WHERE g.name=ug.grp)
        GROUP BY ug.grp;
    INSERT INTO group_members(user_id, group_id, source)
        SELECT u.id, g.id, 'local' FROM user_groups ug
        JOIN users u ON u.name=ug.user_name
        JOIN auth_groups g ON g.name=ug.grp
        WHERE 1=1
        ON CONFLICT DO NOTHING;
    DROP TABLE auth_user_groups;
    DROP TABLE user_groups;
    """,
}
