#!/bin/bash
# The pull and hostile-image tests again with zlib as the gzip inflater (COVE_INFLATE=zlib), as
# on a host whose cove was built without ISA-L; their lines are marked [zlib].
here=$(dirname "$0")
for t in t_pull t_pull_bad; do
	COVE_INFLATE=zlib bash "$here/$t.sh" 2>&1 | sed -E "s/^((not )?ok - )$t:/\1$t[zlib]:/"
done
