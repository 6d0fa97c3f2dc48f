#!/bin/bash
# The core of the suite again with every VM booted cold (COVE_TEMPLATE=0), as on a host where no
# template serves: the rest of the suite runs restored from templates (scripts/test.sh makes
# them first). Their lines are marked [cold].
here=$(dirname "$0")
for t in t_run_basic t_stdio t_tty t_exec t_lifecycle t_cp t_net t_crash; do
	COVE_TEMPLATE=0 bash "$here/$t.sh" 2>&1 | sed -E "s/^((not )?ok - )$t:/\1$t[cold]:/"
done
