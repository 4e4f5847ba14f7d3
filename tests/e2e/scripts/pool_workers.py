# A multiprocessing Pool (start method from argv: fork or spawn) whose workers each build their
# own data at one marked line and hold it for a moment. Prints the pids of the workers that
# did work, as JSON, so the test knows which processes must appear in the merged report.
import json
import multiprocessing as mp
import os
import sys
import time

MB = 1_000_000


def work(i):
    data = bytearray((20 + 10 * (i % 3)) * MB)  # LINE:work
    time.sleep(0.3)
    return os.getpid(), len(data)


def main():
    ctx = mp.get_context(sys.argv[1])
    pool = ctx.Pool(3)
    results = pool.map(work, range(6), chunksize=1)
    # close + join: workers exit normally, so each trace ends cleanly.
    pool.close()
    pool.join()
    print(json.dumps(sorted({pid for pid, _ in results})))


if __name__ == "__main__":
    main()
