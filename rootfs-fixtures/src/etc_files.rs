//! The account and host files of the fixture rootfs (`/etc/passwd`, `/etc/group`,
//! `/etc/hosts`) and the ids tests can rely on.

/// The unprivileged user `app`, with a home in `/home/app`.
pub const APP_USER: &str = "app";
/// `app`'s uid.
pub const APP_UID: u32 = 1000;
/// `app`'s primary gid (group `app`).
pub const APP_GID: u32 = 1000;
/// Supplementary groups that list `app` as a member (`extra1`, `extra2`).
pub const APP_EXTRA_GIDS: [u32; 2] = [1001, 1002];
/// The overflow user and group id (`nobody` / `nogroup`).
pub const NOBODY_ID: u32 = 65534;

/// `/etc/passwd`: root, app and nobody.
pub fn passwd() -> String {
    format!(
        "root:x:0:0:root:/root:/bin/sh\n\
         {APP_USER}:x:{APP_UID}:{APP_GID}:app:/home/{APP_USER}:/bin/sh\n\
         nobody:x:{NOBODY_ID}:{NOBODY_ID}:nobody:/nonexistent:/bin/false\n"
    )
}

/// `/etc/group`: root, app, two extra groups with `app` as member, and nogroup.
pub fn group() -> String {
    let [extra1, extra2] = APP_EXTRA_GIDS;
    format!(
        "root:x:0:\n\
         {APP_USER}:x:{APP_GID}:\n\
         extra1:x:{extra1}:{APP_USER}\n\
         extra2:x:{extra2}:{APP_USER}\n\
         nogroup:x:{NOBODY_ID}:\n"
    )
}

/// `/etc/hosts`: the loopback names.
pub fn hosts() -> &'static str {
    "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_has_three_users_with_seven_fields() {
        let text = passwd();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines.iter().all(|line| line.split(':').count() == 7));
        assert!(text.contains("app:x:1000:1000:app:/home/app:/bin/sh"));
    }

    #[test]
    fn extra_groups_list_app() {
        let text = group();
        assert!(text.contains("extra1:x:1001:app\n"));
        assert!(text.contains("extra2:x:1002:app\n"));
        assert!(text.lines().all(|line| line.split(':').count() == 4));
    }
}
