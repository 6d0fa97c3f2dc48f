#!/bin/bash
# -it through a real terminal (tmux): prompt, size, resize, Ctrl-C, terminal restored.
. "$(dirname "$0")/lib.sh"

sock="$T/tmux.sock"
tm() { tmux -S "$sock" "$@"; }
screen() { tm capture-pane -p -t t; }
wait_for() { # PATTERN [SECONDS]
	for _ in $(seq 1 $(( ${2:-30} * 10 ))); do
		screen | grep -q "$1" && return 0
		sleep 0.1
	done
	return 1
}

tm new-session -d -s t -x 100 -y 30 "bash --norc --noprofile"
tm set-option -t t status off
tm send-keys -t t "stty -a | grep -o 'icanon' ; PS1='host$ '" Enter
tm send-keys -t t "clear; COVE_ROOT=$COVE_ROOT $COVE run -it --rm busybox sh; echo exit=\$?" Enter
if wait_for '^/ #' 60; then ok "-it shows the shell prompt"; else not_ok "-it shows the shell prompt" "$(screen)"; fi

tm send-keys -t t "stty size" Enter
if wait_for '^29 100$\|^30 100$' 10; then ok "stty size matches the terminal"; else not_ok "stty size matches the terminal" "$(screen)"; fi

tm resize-window -t t -x 120 -y 40 2>/dev/null || tm resize-pane -t t -x 120 -y 40
sleep 0.5
tm send-keys -t t "clear; stty size" Enter
if wait_for '^39 120$\|^40 120$' 10; then ok "a resize reaches the container"; else not_ok "a resize reaches the container" "$(screen)"; fi

tm send-keys -t t "clear; sleep 100" Enter
sleep 1
tm send-keys -t t C-c
tm send-keys -t t "echo after-sleep=\$?" Enter
if wait_for 'after-sleep=130' 10; then ok "Ctrl-C interrupts sleep"; else not_ok "Ctrl-C interrupts sleep" "$(screen)"; fi

tm send-keys -t t "exit 5" Enter
if wait_for 'exit=5' 20; then ok "exit status of the shell comes back"; else not_ok "exit status of the shell comes back" "$(screen)"; fi
# the host terminal is back in cooked mode with echo
tm send-keys -t t "clear; stty -a | tr ' ' '\n' | grep -x -e icanon -e echo | tr '\n' ' '; echo" Enter
if wait_for '^icanon echo' 10; then ok "host terminal restored"; else not_ok "host terminal restored" "$(screen)"; fi

# stdin EOF (Ctrl-D) reaches the shell in the container
tm send-keys -t t "clear; $COVE run -it --rm busybox sh -c 'echo ready; cat; echo cat-done'; echo exit=\$?" Enter
wait_for '^ready' 60
tm send-keys -t t "typed" Enter
tm send-keys -t t C-d
if wait_for 'cat-done' 30; then ok "Ctrl-D (EOF) reaches the container"; else not_ok "Ctrl-D (EOF) reaches the container" "$(screen)"; fi

# Ctrl-P Ctrl-Q detaches and leaves the container running; attach comes back to it
tm send-keys -t t "clear; $COVE run -it --name dt busybox sh; echo detached=\$?" Enter
wait_for '^/ #' 60
tm send-keys -t t C-p C-q
if wait_for 'detached=0' 20 && [ "$(inspect_field dt State.Status)" = running ]; then
	ok "Ctrl-P Ctrl-Q detaches, the container runs on"
else
	not_ok "Ctrl-P Ctrl-Q detaches, the container runs on" "$(screen)" "$(inspect_field dt State.Status)"
fi
tm send-keys -t t "clear; $COVE attach dt; echo attach=\$?" Enter
sleep 1
tm send-keys -t t "echo back-in-\$((6*7))" Enter
wait_for 'back-in-42' 20
# exec -it: a terminal of its own in the running container
tm send-keys -t t C-p C-q
wait_for 'attach=0' 20
tm send-keys -t t "clear; $COVE exec -it dt sh; echo exec=\$?" Enter
wait_for '^/ #' 30
tm send-keys -t t "tty; echo cols=\$(stty size)" Enter
if wait_for '^/dev/pts/[0-9]' 10 && wait_for 'cols=[0-9]* 120' 10; then ok "exec -it gets a pty of its own, sized"; else not_ok "exec -it gets a pty of its own, sized" "$(screen)"; fi
tm send-keys -t t "exit 7" Enter
if wait_for 'exec=7' 20; then ok "exec -it: exit status comes back"; else not_ok "exec -it: exit status comes back" "$(screen)"; fi
tm send-keys -t t "clear; $COVE attach dt; echo attach=\$?" Enter
sleep 1
tm send-keys -t t "exit 3" Enter
if wait_for 'attach=3' 20; then ok "attach to a -it container: input, output, exit status"; else not_ok "attach to a -it container: input, output, exit status" "$(screen)"; fi
tm kill-server 2>/dev/null
