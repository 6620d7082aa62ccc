#pragma once
/// @file spsc_queue.hpp
/// Bounded single-producer single-consumer ring for trivially copyable messages.

#include <atomic>
#include <cstddef>
#include <memory>
#include <type_traits>

#include "eqd/core/seqlock.hpp"  // kCacheLine

namespace eqd::core {

/// Fixed-capacity lock-free FIFO. Storage is allocated once in the constructor.
/// Thread-safety: try_push() from one producer thread, try_pop() from one consumer thread; both
/// wait-free. Several producers must serialise among themselves (e.g. with a mutex on their side);
/// the consumer (the control thread) never takes a lock.
template <class T>
class SpscQueue {
  static_assert(std::is_trivially_copyable_v<T>, "queue messages must be trivially copyable");

 public:
  /// capacity is rounded up to a power of two (at least 2).
  explicit SpscQueue(std::size_t capacity) {
    std::size_t c = 2;
    while (c < capacity) c <<= 1U;
    mask_ = c - 1;
    slots_ = std::make_unique<T[]>(c);
  }
  SpscQueue(const SpscQueue&) = delete;
  SpscQueue& operator=(const SpscQueue&) = delete;

  /// Producer thread. Returns false (and drops nothing) when full.
  [[nodiscard]] bool try_push(const T& v) noexcept {
    const std::size_t tail = tail_.load(std::memory_order_relaxed);
    if (tail - head_cache_ > mask_) {
      head_cache_ = head_.load(std::memory_order_acquire);
      if (tail - head_cache_ > mask_) return false;
    }
    slots_[tail & mask_] = v;
    tail_.store(tail + 1, std::memory_order_release);
    return true;
  }

  /// Consumer thread. Returns false when empty.
  [[nodiscard]] bool try_pop(T& out) noexcept {
    const std::size_t head = head_.load(std::memory_order_relaxed);
    if (head == tail_cache_) {
      tail_cache_ = tail_.load(std::memory_order_acquire);
      if (head == tail_cache_) return false;
    }
    out = slots_[head & mask_];
    head_.store(head + 1, std::memory_order_release);
    return true;
  }

  /// Consumer thread. True when try_pop() would return false; copies nothing.
  [[nodiscard]] bool empty() noexcept {
    const std::size_t head = head_.load(std::memory_order_relaxed);
    if (head != tail_cache_) return false;
    tail_cache_ = tail_.load(std::memory_order_acquire);
    return head == tail_cache_;
  }

  [[nodiscard]] std::size_t capacity() const noexcept { return mask_ + 1; }

 private:
  // Producer and consumer indices live on separate cache lines so that they do not false-share.
  alignas(kCacheLine) std::atomic<std::size_t> head_{0};
  std::size_t tail_cache_ = 0;  // consumer's copy of tail_
  alignas(kCacheLine) std::atomic<std::size_t> tail_{0};
  std::size_t head_cache_ = 0;  // producer's copy of head_
  alignas(kCacheLine) std::size_t mask_ = 0;
  std::unique_ptr<T[]> slots_;
};

}  // namespace eqd::core
