"""Peak memory of the current process, for the benches that run each method in a child."""

import resource


def peak_rss_mb() -> float:
    """This process's own peak (VmHWM). ru_maxrss would also count the parent's memory at fork."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
