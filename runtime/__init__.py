"""The executors: the in-process reference executor and the Redis-backed decentralized one."""
