//! The container process's user: `run_as_user` / `run_as_username` /
//! `run_as_group` or the image's `User` (`name`, `uid`, `name:group`,
//! `uid:gid`), resolved against the image's own `/etc/passwd` and
//! `/etc/group` (read inside the rootfs), with supplementary groups from
//! `/etc/group` membership (unless the policy is Strict) plus the request's
//! `supplemental_groups`. Policy checks such as run-as-non-root are kubelet's.

use std::path::Path;

use berth_proto::v1::{LinuxContainerSecurityContext, SupplementalGroupsPolicy};

use super::{in_root, SpecError};

const SC: &str = "config.linux.security_context";
const IMAGE_USER: &str = "image config User";

/// Who the process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups, the primary gid first, without duplicates.
    pub additional_gids: Vec<u32>,
    /// The home directory from `/etc/passwd`, `/` when the user has no entry.
    pub home: String,
}

/// A user or group named by number or by name, with the field that named it.
#[derive(Debug, Clone)]
enum Id {
    Number(u32),
    Name(String),
}

/// Resolves the user for a container whose rootfs is at `rootfs`.
pub(crate) fn resolve(
    rootfs: &Path,
    sc: Option<&LinuxContainerSecurityContext>,
    image_user: &str,
) -> Result<ResolvedUser, SpecError> {
    let (user, group) = requested(sc, image_user)?;
    let passwd = Database::load(rootfs, "/etc/passwd", &user.1)?;
    let entry = match &user.0 {
        Id::Number(uid) => passwd.find(|f| number(f.get(2)) == Some(*uid)),
        Id::Name(name) => Some(
            passwd
                .find(|f| f.first() == Some(&name.as_str()))
                .ok_or_else(|| {
                    SpecError::invalid(
                        &user.1,
                        format!("user {name:?} not found in the image's /etc/passwd"),
                    )
                })?,
        ),
    };
    let uid = match &user.0 {
        Id::Number(uid) => *uid,
        Id::Name(_) => entry
            .as_ref()
            .and_then(|f| number(f.get(2)))
            .ok_or_else(|| SpecError::invalid(&user.1, "bad uid in the image's /etc/passwd"))?,
    };
    let name = entry
        .as_ref()
        .and_then(|f| f.first().map(|s| s.to_string()));
    let home = entry
        .as_ref()
        .and_then(|f| f.get(5))
        .filter(|h| !h.is_empty())
        .map_or_else(|| "/".to_string(), |h| h.to_string());

    let merge = sc
        .is_none_or(|sc| sc.supplemental_groups_policy != SupplementalGroupsPolicy::Strict as i32);
    let needs_groups = matches!(group, Some((Id::Name(_), _))) || (merge && name.is_some());
    let groups = if needs_groups {
        let field = group.as_ref().map_or(user.1.as_str(), |g| g.1.as_str());
        Database::load(rootfs, "/etc/group", field)?
    } else {
        Database::default()
    };
    let gid = match &group {
        Some((Id::Number(gid), _)) => *gid,
        Some((Id::Name(gname), field)) => groups
            .find(|f| f.first() == Some(&gname.as_str()))
            .and_then(|f| number(f.get(2)))
            .ok_or_else(|| {
                SpecError::invalid(
                    field,
                    format!("group {gname:?} not found in the image's /etc/group"),
                )
            })?,
        None => entry.as_ref().and_then(|f| number(f.get(3))).unwrap_or(0),
    };

    let mut additional_gids = vec![gid];
    if let (true, Some(name)) = (merge, &name) {
        for fields in groups.entries() {
            let member = fields
                .get(3)
                .is_some_and(|m| m.split(',').any(|m| m.trim() == name));
            if let (true, Some(g)) = (member, number(fields.get(2))) {
                additional_gids.push(g);
            }
        }
    }
    for (i, g) in sc
        .map(|sc| sc.supplemental_groups.as_slice())
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        additional_gids.push(id_value(&format!("{SC}.supplemental_groups[{i}]"), *g)?);
    }
    let mut seen = std::collections::HashSet::new();
    additional_gids.retain(|g| seen.insert(*g));
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home,
    })
}

/// The requested user and optional group, each with the field naming it.
#[allow(clippy::type_complexity)]
fn requested(
    sc: Option<&LinuxContainerSecurityContext>,
    image_user: &str,
) -> Result<((Id, String), Option<(Id, String)>), SpecError> {
    let run_as_user = sc.and_then(|sc| sc.run_as_user);
    let run_as_username = sc.map(|sc| sc.run_as_username.as_str()).unwrap_or_default();
    let run_as_group = sc.and_then(|sc| sc.run_as_group);
    let field = |name: &str| format!("{SC}.{name}");
    let group = run_as_group
        .map(|g| {
            Ok::<_, SpecError>((
                Id::Number(id_value(&field("run_as_group"), g.value)?),
                field("run_as_group"),
            ))
        })
        .transpose()?;
    match (run_as_user, run_as_username) {
        (Some(_), name) if !name.is_empty() => Err(SpecError::invalid(
            field("run_as_username"),
            "only one of run_as_user and run_as_username may be set",
        )),
        (Some(uid), _) => Ok((
            (
                Id::Number(id_value(&field("run_as_user"), uid.value)?),
                field("run_as_user"),
            ),
            group,
        )),
        (None, name) if !name.is_empty() => Ok(((parse_id(name), field("run_as_username")), group)),
        (None, _) if group.is_some() => Err(SpecError::invalid(
            field("run_as_group"),
            "run_as_group is set without run_as_user or run_as_username",
        )),
        (None, _) => {
            let (u, g) = match image_user.split_once(':') {
                Some((u, g)) => (u, Some(g)),
                None => (image_user, None),
            };
            if u.is_empty() && g.is_some() {
                return Err(SpecError::invalid(
                    IMAGE_USER,
                    format!("{image_user:?} names a group without a user"),
                ));
            }
            let user = if u.is_empty() {
                Id::Number(0)
            } else {
                parse_id(u)
            };
            let group = g.map(|g| (parse_id(g), IMAGE_USER.to_string()));
            Ok(((user, IMAGE_USER.to_string()), group))
        }
    }
}

/// A name that is all digits is a number (as the image spec says).
fn parse_id(s: &str) -> Id {
    match s.parse::<u32>() {
        Ok(n) if s.bytes().all(|b| b.is_ascii_digit()) => Id::Number(n),
        _ => Id::Name(s.to_string()),
    }
}

/// An id from a CRI int64 field.
fn id_value(field: &str, value: i64) -> Result<u32, SpecError> {
    u32::try_from(value)
        .ok()
        .filter(|v| *v != u32::MAX)
        .ok_or_else(|| SpecError::invalid(field, format!("id {value} is out of range")))
}

fn number(field: Option<&&str>) -> Option<u32> {
    field.and_then(|s| s.trim().parse().ok())
}

/// The lines of `/etc/passwd` or `/etc/group` (an absent file is empty).
#[derive(Default)]
struct Database(String);

impl Database {
    fn load(rootfs: &Path, path: &str, field: &str) -> Result<Self, SpecError> {
        in_root::read_to_string(rootfs, path)
            .map(|content| Self(content.unwrap_or_default()))
            .map_err(|source| SpecError::ImageFile {
                field: field.to_string(),
                path: path.into(),
                source,
            })
    }

    fn entries(&self) -> impl Iterator<Item = Vec<&str>> {
        self.0
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|l| l.split(':').collect::<Vec<_>>())
            .filter(|f| f.len() >= 3)
    }

    fn find(&self, pred: impl Fn(&Vec<&str>) -> bool) -> Option<Vec<&str>> {
        self.entries().find(|f| pred(f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_proto::v1::Int64Value;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        # comment\n\
        daemon:x:1:1::/usr/sbin:/bin/false\n\
        app:x:1000:1000:App:/home/app:/bin/sh\n\
        nohome:x:1001:1001::\n";
    const GROUP: &str =
        "root:x:0:\nwheel:x:10:root,app\nstaff:x:50:app\napp:x:1000:\nother:x:2000:nobody\n";

    fn rootfs() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/passwd"), PASSWD).unwrap();
        std::fs::write(dir.path().join("etc/group"), GROUP).unwrap();
        dir
    }

    fn sc() -> LinuxContainerSecurityContext {
        LinuxContainerSecurityContext::default()
    }

    fn user(uid: u32, gid: u32, groups: &[u32], home: &str) -> ResolvedUser {
        ResolvedUser {
            uid,
            gid,
            additional_gids: groups.to_vec(),
            home: home.into(),
        }
    }

    #[test]
    fn empty_image_user_is_root_with_its_groups() {
        let root = rootfs();
        assert_eq!(
            resolve(root.path(), None, "").unwrap(),
            user(0, 0, &[0, 10], "/root")
        );
    }

    #[test]
    fn image_user_forms() {
        let root = rootfs();
        let r = |u: &str| resolve(root.path(), None, u).unwrap();
        assert_eq!(r("app"), user(1000, 1000, &[1000, 10, 50], "/home/app"));
        assert_eq!(r("1000"), user(1000, 1000, &[1000, 10, 50], "/home/app"));
        assert_eq!(r("app:staff"), user(1000, 50, &[50, 10], "/home/app"));
        assert_eq!(
            r("1000:2000"),
            user(1000, 2000, &[2000, 10, 50], "/home/app")
        );
        // A uid without an entry: gid 0, home /, no membership.
        assert_eq!(r("4242"), user(4242, 0, &[0], "/"));
        assert_eq!(r("4242:7"), user(4242, 7, &[7], "/"));
        assert_eq!(r("nohome"), user(1001, 1001, &[1001], "/"));
    }

    #[test]
    fn unknown_image_user_or_group_is_an_error() {
        let root = rootfs();
        let err = resolve(root.path(), None, "ghost").unwrap_err();
        assert_eq!(err.field(), Some(IMAGE_USER));
        assert!(err.to_string().contains("\"ghost\""), "{err}");
        let err = resolve(root.path(), None, "app:ghosts").unwrap_err();
        assert!(err.to_string().contains("\"ghosts\""), "{err}");
        assert!(resolve(root.path(), None, ":10").is_err());
    }

    #[test]
    fn run_as_user_and_group_override_the_image() {
        let root = rootfs();
        let mut sc = sc();
        sc.run_as_user = Some(Int64Value { value: 1000 });
        assert_eq!(
            resolve(root.path(), Some(&sc), "root").unwrap(),
            user(1000, 1000, &[1000, 10, 50], "/home/app")
        );
        sc.run_as_group = Some(Int64Value { value: 3000 });
        sc.supplemental_groups = vec![4000, 10];
        assert_eq!(
            resolve(root.path(), Some(&sc), "").unwrap(),
            user(1000, 3000, &[3000, 10, 50, 4000], "/home/app")
        );
    }

    #[test]
    fn run_as_username_is_looked_up() {
        let root = rootfs();
        let mut sc = sc();
        sc.run_as_username = "daemon".into();
        assert_eq!(
            resolve(root.path(), Some(&sc), "").unwrap(),
            user(1, 1, &[1], "/usr/sbin")
        );
        sc.run_as_username = "ghost".into();
        let err = resolve(root.path(), Some(&sc), "").unwrap_err();
        assert_eq!(
            err.field(),
            Some("config.linux.security_context.run_as_username")
        );
    }

    #[test]
    fn strict_policy_skips_membership() {
        let root = rootfs();
        let mut sc = sc();
        sc.run_as_user = Some(Int64Value { value: 1000 });
        sc.supplemental_groups = vec![5];
        sc.supplemental_groups_policy = SupplementalGroupsPolicy::Strict as i32;
        assert_eq!(
            resolve(root.path(), Some(&sc), "").unwrap(),
            user(1000, 1000, &[1000, 5], "/home/app")
        );
    }

    #[test]
    fn inconsistent_or_out_of_range_requests_name_the_field() {
        let root = rootfs();
        let mut s = sc();
        s.run_as_group = Some(Int64Value { value: 5 });
        let err = resolve(root.path(), Some(&s), "app").unwrap_err();
        assert_eq!(
            err.field(),
            Some("config.linux.security_context.run_as_group")
        );

        let mut s = sc();
        s.run_as_user = Some(Int64Value { value: 1 });
        s.run_as_username = "app".into();
        assert_eq!(
            resolve(root.path(), Some(&s), "").unwrap_err().field(),
            Some("config.linux.security_context.run_as_username")
        );

        let mut s = sc();
        s.run_as_user = Some(Int64Value { value: -1 });
        assert_eq!(
            resolve(root.path(), Some(&s), "").unwrap_err().field(),
            Some("config.linux.security_context.run_as_user")
        );

        let mut s = sc();
        s.run_as_user = Some(Int64Value { value: 0 });
        s.supplemental_groups = vec![1, 1 << 40];
        assert_eq!(
            resolve(root.path(), Some(&s), "").unwrap_err().field(),
            Some("config.linux.security_context.supplemental_groups[1]")
        );
    }

    #[test]
    fn image_without_account_files_allows_numeric_ids_only() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(
            resolve(root.path(), None, "").unwrap(),
            user(0, 0, &[0], "/")
        );
        assert_eq!(
            resolve(root.path(), None, "10:20").unwrap(),
            user(10, 20, &[20], "/")
        );
        assert!(resolve(root.path(), None, "app").is_err());
    }
}
