#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (libFuzzer through cargo-fuzz on the nightly
# toolchain). Usage: scripts/fuzz.sh [SECONDS_PER_TARGET]. A crash fails the run and leaves
# its input under fuzz/artifacts/.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
seconds="${1:-60}"
export PATH="$HOME/.cargo/bin:$PATH"

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "[fuzz] installing the nightly toolchain"
    rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "[fuzz] installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

# A failing `fuzz list` inside a loop header would not stop the script: ask first.
targets="$(cargo +nightly fuzz list)"
if [ -z "$targets" ]; then
    echo "[fuzz] no fuzz targets found" >&2
    exit 1
fi
for target in $targets; do
    printf '\n==> fuzz %s for %ss\n' "$target" "$seconds"
    mkdir -p "fuzz/corpus/$target"
    max_len=4096
    case "$target" in
        scenario_file)
            # Starts from the built-in scenarios, which libFuzzer changes a little at a time:
            # random bytes are seldom JSON, let alone a scenario that passes its checks.
            cp scenarios/*.json "fuzz/corpus/$target/"
            max_len=8192
            ;;
        share_link)
            printf '#scenario=greylisting&step=55' >"fuzz/corpus/$target/step"
            printf '#scenario=basic-delivery&to=nobody%%40receiver.test&subject=Hi&body=Hello%%0A&step=40' \
                >"fuzz/corpus/$target/message"
            ;;
        client_session)
            # A server that lists DSN, so that the client sends the parameters it was given.
            printf '220 mx ESMTP\r\n250-mx\r\n250-PIPELINING\r\n250 DSN\r\n250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n221 bye\r\n' \
                >"fuzz/corpus/$target/dsn"
            ;;
        server_session)
            # A session with DSN's parameters (RFC 3461), xtext and all, for libFuzzer to change.
            printf 'EHLO c.example\r\nMAIL FROM:<a@c.example> RET=HDRS ENVID=a+2Bb\r\nRCPT TO:<bob@example.org> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;bob+3Dx@example.org\r\nDATA\r\nHi\r\n.\r\nQUIT\r\n' \
                >"fuzz/corpus/$target/dsn"
            ;;
        pop3_server_session)
            # A whole session, every command once, for libFuzzer to change.
            printf 'CAPA\r\nUSER alice\r\nPASS secret\r\nSTAT\r\nLIST\r\nUIDL\r\nRETR 1\r\nTOP 1 0\r\nDELE 1\r\nRSET\r\nDELE 2\r\nQUIT\r\n' \
                >"fuzz/corpus/$target/session"
            ;;
        message_outline)
            # A message with attachments, then (after 0xFF) its first copy, one field fewer.
            printf 'Received: by mx\r\nMessage-ID: <1@a>\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: x\r\n\r\nhi\r\n--b\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename="a.png"\r\nContent-Transfer-Encoding: base64\r\n\r\niVBO\r\n--b--\r\n\377Message-ID: <1@a>\r\n\r\n' \
                >"fuzz/corpus/$target/message"
            ;;
        pop3_client_session)
            # A server's side of a whole session, one response per piece (cut at 0xFF).
            printf '+OK hi\r\n+OK\r\nUSER\r\nUIDL\r\n.\r\n\377+OK\r\n\377+OK\r\n\377+OK 1 5\r\n\377+OK\r\n1 5\r\n.\r\n\377+OK\r\n1 u1\r\n.\r\n\377+OK\r\n..x\r\n.\r\n\377+OK\r\n\377+OK bye\r\n' \
                >"fuzz/corpus/$target/session"
            ;;
    esac
    set +e
    cargo +nightly fuzz run "$target" "fuzz/corpus/$target" -- -max_total_time="$seconds" -max_len="$max_len" \
        >"fuzz/$target.log" 2>&1
    status=$?
    set -e
    grep -E '^(#[0-9]+ +DONE|Done [0-9]+ runs|==[0-9]+==|SUMMARY|Test unit written)' "fuzz/$target.log" || true
    if [ "$status" -ne 0 ]; then
        echo "[fuzz] $target FAILED (see fuzz/artifacts/$target/)"
        exit "$status"
    fi
done
echo "[fuzz] every target ran ${seconds}s without a crash"
