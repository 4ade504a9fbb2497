#!/usr/bin/env bash
# Starts or stops a private Postfix instance for the interop tests, entirely under DIR and on
# loopback ports: it delivers mail for `postfix.test` into Maildirs under DIR/mail, and relays
# mail for `relay.test` to 127.0.0.1:RELAY_PORT (where the tests run `smtp-lab serve`).
#   postfix-instance.sh start DIR SMTPD_PORT RELAY_PORT
#   postfix-instance.sh stop DIR
set -euo pipefail

action="$1"
dir="$(mkdir -p "$2" && cd "$2" && pwd)"

if [ "$action" = "stop" ]; then
    postfix -c "$dir/conf" stop >/dev/null 2>&1 || true
    exit 0
fi

smtpd_port="$3"
relay_port="$4"
mkdir -p "$dir/conf" "$dir/queue" "$dir/data" "$dir/mail"
chown postfix "$dir/data"
chown postfix:postfix "$dir/mail"
postfix_uid="$(id -u postfix)"
postfix_gid="$(id -g postfix)"

cat > "$dir/conf/main.cf" <<CONF
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = loopback-only
inet_protocols = ipv4
myhostname = postfix.smtp-lab.test
mydomain = smtp-lab.test
myorigin = smtp-lab.test
mydestination =
mynetworks = 127.0.0.0/8
maillog_file = $dir/maillog
maillog_file_prefixes = $dir
smtp_dns_support_level = disabled
smtputf8_enable = yes
virtual_mailbox_domains = postfix.test
virtual_mailbox_base = $dir/mail
virtual_mailbox_maps = texthash:$dir/conf/vmailbox
virtual_uid_maps = static:$postfix_uid
virtual_gid_maps = static:$postfix_gid
relay_domains = relay.test
transport_maps = texthash:$dir/conf/transport
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
# Retry quickly: a test waits for the relayed message.
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
CONF

cat > "$dir/conf/vmailbox" <<MAP
carol@postfix.test carol/
dave@postfix.test dave/
MAP

cat > "$dir/conf/transport" <<MAP
relay.test smtp:[127.0.0.1]:$relay_port
MAP

# Debian's master.cf with every service out of the chroot and smtpd on our loopback port.
awk -v port="$smtpd_port" '
    /^smtp[ \t]+inet/ { $1 = "127.0.0.1:" port }
    /^[a-z0-9.:-]+[ \t]+(inet|unix|unix-dgram|fifo|pass)[ \t]/ && NF >= 8 { $5 = "n" }
    { print }
' /etc/postfix/master.cf > "$dir/conf/master.cf"

postfix -c "$dir/conf" check
postfix -c "$dir/conf" start
