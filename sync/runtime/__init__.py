"""How pcsync runs: the run lock and run records, logging, failpoints, the daemon, its
standby and health endpoint, and backups.

Nothing here knows about Partner Center or the ledger; the jobs the daemon schedules
live beside it in :mod:`sync.jobs`.
"""
