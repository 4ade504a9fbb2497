#!/usr/bin/env bash
# Starts or stops a private Dovecot POP3 server for the interop tests, entirely under DIR and
# on a loopback port: it serves the Maildir DIR/mail/bob/ to the login bob:secret, as the
# system's `dovecot` user.
#   dovecot-instance.sh start DIR PORT
#   dovecot-instance.sh stop DIR
set -euo pipefail

action="$1"
dir="$(mkdir -p "$2" && cd "$2" && pwd)"

if [ "$action" = "stop" ]; then
    doveadm -c "$dir/dovecot.conf" stop >/dev/null 2>&1 || true
    exit 0
fi

port="$3"
# The configuration below is Dovecot 2.3's (Debian 12); 2.4 renamed several settings.
version="$(dovecot --version)"
case "$version" in
    2.3.*) ;;
    *) echo "dovecot-instance.sh writes a Dovecot 2.3 configuration; this is $version" >&2; exit 1 ;;
esac
mail_uid="$(id -u dovecot)"
mail_gid="$(id -g dovecot)"
mkdir -p "$dir/run" "$dir/state" "$dir/mail/bob/new" "$dir/mail/bob/cur" "$dir/mail/bob/tmp"
chown -R dovecot:dovecot "$dir/mail"
printf 'bob:{PLAIN}secret\n' > "$dir/passwd"

cat > "$dir/dovecot.conf" <<CONF
base_dir = $dir/run
state_dir = $dir/state
log_path = $dir/dovecot.log
protocols = pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
first_valid_uid = $mail_uid
last_valid_uid = 0
default_internal_user = dovecot
default_login_user = dovenull
mail_location = maildir:$dir/mail/%u
passdb {
  driver = passwd-file
  args = scheme=PLAIN $dir/passwd
}
userdb {
  driver = static
  args = uid=$mail_uid gid=$mail_gid home=$dir/mail/%u
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $port
  }
}
service imap-login {
  inet_listener imap {
    port = 0
  }
}
CONF
# Its daemons must not hold the caller's output open (a test reads it to the end).
if ! dovecot -c "$dir/dovecot.conf" </dev/null >"$dir/startup.log" 2>&1; then
    cat "$dir/startup.log" >&2
    exit 1
fi
