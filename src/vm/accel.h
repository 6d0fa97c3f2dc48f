/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Which accelerator a VM runs on. A /dev/kvm that opens proves little: on nested hosts it
 * opens, answers its API version, and then QEMU aborts or the guest dies in an emulation
 * failure. So KVM is used only where a real boot of our own kernel and initramfs under KVM
 * reached cove-init's HELLO (a probe); TCG otherwise. The verdict is cached in a file keyed by
 * the host kernel, QEMU and our kernel and initramfs, and probed again when any of them changes.
 * A probe that fails under KVM is repeated under TCG: only if the guest boots there is KVM to
 * blame.
 * See docs/internals/accel.md.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "../util/error.h"

enum vm_accel { VM_ACCEL_AUTO, VM_ACCEL_KVM, VM_ACCEL_TCG };

/* "auto", "kvm", "tcg" -> enum; -EINVAL for anything else. */
int vm_accel_parse(const char *s, enum vm_accel *ret);
const char *vm_accel_name(enum vm_accel a);
/* The accelerator asked for: s if non-NULL (--accel, or a container's setting from it), else
 * $COVE_ACCEL, else auto. A bad value is an error naming where it came from. */
int vm_accel_wanted(const char *s, enum vm_accel *ret, struct cove_error *err);

/* What cove runs VMs on here, and why. */
struct vm_verdict {
	bool kvm;	   /* use KVM (else TCG) */
	bool probed;	   /* a probe boot ran for this verdict (now, or when it was cached) */
	bool fresh;	   /* that probe ran during this call (not read from the cache) */
	bool inconclusive; /* the probe failed under TCG too: the guest is broken, not KVM (TCG
			    * is used, nothing is cached, the container's own boot says why) */
	char cpu[64];	   /* QEMU's -cpu under KVM */
	char when[32];	   /* when the verdict was made, RFC 3339 UTC ("" if not recorded) */
	uint64_t probe_ms; /* probe: from starting QEMU to HELLO (0 if HELLO never came) */
	char reason[768];  /* why TCG, or what the probe saw */
};

/* What the verdict depends on, and where it is kept. */
struct vm_accel_ctx {
	const char *qemu;
	const char *kernel;
	const char *initrd;
	const char *cache_dir; /* holds the verdict ("accel"), its lock and the probe's logs */
	const char *confine_dir;  /* the probe's QEMU is confined as a container's (vm.h) */
};

/* The KVM device cove checks: $COVE_KVM_DEVICE, else /dev/kvm. */
const char *vm_kvm_device(void);

/*
 * Decide. TCG when asked for. Otherwise the KVM device must open read-write, then the cached
 * verdict for this host is used, or a probe boot decides (one process at a time probes; the
 * others wait for its verdict). AUTO falls back to TCG with the reason kept. KVM fails
 * (-ENODEV, err says why and what to do) where KVM does not work; a cached "broken" verdict is
 * probed again first, since the user insists.
 */
int vm_accel_choose(const struct vm_accel_ctx *x, enum vm_accel want, struct vm_verdict *ret,
		    struct cove_error *err);

/* Drop the cached verdict, so that the next choice probes again. */
int vm_accel_forget(const struct vm_accel_ctx *x);

/*
 * A VM under KVM failed before its guest said HELLO although the probe had passed: record TCG
 * as this host's verdict with why, so that later VMs do not pay for it again.
 */
int vm_accel_record_failure(const struct vm_accel_ctx *x, const char *why);
