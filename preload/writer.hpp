// The writer: a background thread that, every flush interval, collects the threads' buffers
// and writes their events as the trace's event stream (version 4): its WriterCycle
// (exit_replay.hpp) orders each cycle's events across threads, encodes them and replays them
// for the peak on the exit line; each stream payload is one compressed chunk, one write().
#pragma once
#include <pthread.h>

#include <cstdint>

#include "pmt/format.hpp"

namespace pmt::preload {

// Takes ownership of fd (the trace file, header already written) and starts the thread.
// Returns false (and says why) when the thread cannot be started.
bool writer_start(int fd);
// Wakes the writer before its interval ends (a thread filled several buffers).
void writer_wake();

// Final flush at exit or _exit: stops the thread, writes every buffer and the End chunk.
// Tracing must already be off. Returns the summary written in the End chunk. After a
// failure (events were lost) it only stops the thread: the trace must read as truncated.
EndSummary writer_finish(bool write_end_chunk);
// Whether the writer's cycle gave up (the trace then ends at its last complete chunk).
bool writer_replay_failed();

// exec: flushes everything and writes the End chunk, keeping the writer paused; if exec
// fails, writer_resume_after_exec() removes the End chunk again and lets the writer go on.
void writer_pause_for_exec();
void writer_resume_after_exec();

// fork: the child gets a fresh writer on its own file (writer_start again).
void writer_fork_child();

// Spawns one of our threads with every signal blocked (signals stay with the program's own
// threads) and the reentrancy guard set for its whole life.
bool spawn_internal_thread(void* (*fn)(void*), pthread_t* thread_out);
// How many of those threads are running now (the sampler's last-thread check needs it).
int internal_threads_alive();

}  // namespace pmt::preload
