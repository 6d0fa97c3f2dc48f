#!/bin/bash
# The pull and hostile-image tests again with zlib as the gzip inflater (COVE_INFLATE=zlib), as
# on a host whose cove was built without ISA-L, and with each next layer decoded while the one
# before is applied (COVE_PULL_AHEAD=1), as on a host with more than two cores; their lines are
# marked [zlib].
here=$(dirname "$0")
for t in t_pull t_pull_bad; do
	COVE_INFLATE=zlib COVE_PULL_AHEAD=1 bash "$here/$t.sh" 2>&1 |
		sed -E "s/^((not )?ok - )$t:/\1$t[zlib]:/"
done
