"""Runs trying to lock one work dir at the same instant (``python -m lock_race ROUNDS
ATTEMPTS [STALE]``): each round forks ATTEMPTS processes from this small one (cheap, unlike
forking pytest) into a fresh work dir, lets them call ``acquire_work_dir_lock`` together, and
keeps every holder alive until all have tried. With STALE=1 each round starts from the lock
file of a process that has exited. Prints one JSON line: the outcomes of each round."""
import json
import multiprocessing
import socket
import subprocess
import sys
import tempfile

from vitext.engine.hooks import WorkDirInUseError, acquire_work_dir_lock


def attempt(work_dir: str, start, done, outcomes) -> None:
    start.wait()
    try:
        acquire_work_dir_lock(work_dir)
        outcomes.put('held')
    except WorkDirInUseError:
        outcomes.put('refused')
    except Exception as err:  # noqa: BLE001 -- reported to the test
        outcomes.put(repr(err))
    done.wait(60)


def one_round(attempts: int, stale_pid: int) -> list:
    context = multiprocessing.get_context('fork')
    work_dir = tempfile.mkdtemp(prefix='lock_race_')
    if stale_pid:
        with open(f'{work_dir}/train.lock', 'w') as f:
            f.write(f'{stale_pid} {socket.gethostname()}\n')
    start, done, outcomes = context.Barrier(attempts), context.Event(), context.Queue()
    procs = [context.Process(target=attempt, args=(work_dir, start, done, outcomes))
             for _ in range(attempts)]
    for proc in procs:
        proc.start()
    try:
        return sorted(outcomes.get(timeout=60) for _ in procs)
    finally:
        done.set()
        for proc in procs:
            proc.join(30)


if __name__ == '__main__':
    rounds, attempts = int(sys.argv[1]), int(sys.argv[2])
    stale_pid = 0
    if len(sys.argv) > 3 and sys.argv[3] == '1':
        exited = subprocess.Popen(['true'])
        exited.wait()
        stale_pid = exited.pid
    print(json.dumps([one_round(attempts, stale_pid) for _ in range(rounds)]))
