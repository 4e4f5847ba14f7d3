# Benchmark workload (pyperformance-like): a Richards-style operating-system scheduler
# simulation. Objects, method calls and attribute access; few allocations per unit of work.
import sys

IDLE, WORKER, HANDLER_A, HANDLER_B, DEVICE_A, DEVICE_B = range(6)


class Packet:
    def __init__(self, link, ident, kind):
        self.link, self.ident, self.kind, self.datum, self.data = link, ident, kind, 0, [0] * 4

    def append_to(self, lst):
        self.link = None
        if lst is None:
            return self
        p = lst
        while p.link is not None:
            p = p.link
        p.link = self
        return lst


class Task:
    def __init__(self, sched, ident, prio, queue):
        self.sched, self.ident, self.prio, self.queue = sched, ident, prio, queue
        self.waiting = queue is None
        self.count = 0

    def run(self, pkt):
        raise NotImplementedError


class Idle(Task):
    def run(self, pkt):
        self.count += 1
        if self.count > self.sched.budget:
            return None
        return self.sched.tasks[WORKER + (self.count % 5)]


class Worker(Task):
    def run(self, pkt):
        if pkt is None:
            return self.sched.tasks[IDLE]
        pkt.ident = HANDLER_A if pkt.ident == HANDLER_B else HANDLER_B
        for i in range(4):
            pkt.data[i] = (pkt.datum + i) % 26
        pkt.datum += 1
        self.sched.queue_packet(pkt)
        return self.sched.tasks[IDLE]


class Scheduler:
    def __init__(self, budget):
        self.budget = budget
        self.tasks = [Idle(self, 0, 0, None)] + [Worker(self, i, i, None) for i in range(1, 6)]
        self.queue = None
        self.held = 0

    def queue_packet(self, pkt):
        self.queue = pkt.append_to(self.queue) if self.held % 8 else pkt.append_to(None)
        self.held += 1

    def schedule(self):
        task = self.tasks[IDLE]
        while task is not None:
            pkt = self.queue
            if pkt is not None:
                self.queue = pkt.link
            else:
                pkt = Packet(None, WORKER, 0)
            nxt = task.run(pkt)
            task = nxt if nxt is not None or task.ident != IDLE else None
            if isinstance(task, Idle) or task is None:
                continue
        return self.held


budget = int(sys.argv[1]) if len(sys.argv) > 1 else 300_000
print(Scheduler(budget).schedule())
