#pragma once
/// @file seqlock.hpp
/// Single-writer, multi-reader seqlock whose payload is copied word by word through atomics.
///
/// Why not a plain seqlock: copying a non-atomic payload while a writer may be storing it is a data
/// race under the C++ memory model (and TSan reports it). Here every payload word is a
/// std::atomic<uint64_t>: the writer stores each word with release order after making the sequence odd,
/// the reader loads each word with acquire order. A reader that sees any word of a newer write therefore
/// also sees the odd sequence that preceded it, and its closing sequence check fails. On x86-64 these
/// acquire loads and release stores are plain moves: the protocol costs nothing over a raw copy.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace eqd::core {

/// Cache line size used for alignment: keeps one slot's sequence and words from sharing a line with
/// the neighbouring slot, so one I/O thread's writes do not invalidate another's (false sharing).
inline constexpr std::size_t kCacheLine = 64;

/// A value of trivially copyable type T shared by exactly one writer thread and any number of readers.
/// Thread-safety: store() from one thread at a time (the owner); try_load()/load() from any thread.
/// Never blocks the writer; readers retry only while a write is in progress.
template <class T>
class alignas(kCacheLine) Seqlock {
  static_assert(std::is_trivially_copyable_v<T>, "Seqlock payload must be trivially copyable");
  static constexpr std::size_t kWords = (sizeof(T) + 7) / 8;
  static constexpr std::size_t kFullWords = sizeof(T) / 8;
  static constexpr std::size_t kTailBytes = sizeof(T) % 8;

 public:
  Seqlock() noexcept {
    T zero{};
    store(zero);
  }
  explicit Seqlock(const T& value) noexcept { store(value); }
  Seqlock(const Seqlock&) = delete;
  Seqlock& operator=(const Seqlock&) = delete;

  /// Publish a new value. Owner thread only. Wait-free.
  /// Each word goes straight from `value` to its atomic (no staging copy of the whole payload: for a
  /// snapshot of a few hundred bytes that copy was a `rep movs` costing more than the stores).
  void store(const T& value) noexcept {
    const auto* src = reinterpret_cast<const unsigned char*>(&value);
    const std::uint64_t s = seq_.load(std::memory_order_relaxed);
    seq_.store(s + 1, std::memory_order_relaxed);
#pragma GCC unroll 64
    for (std::size_t i = 0; i < kFullWords; ++i) {
      std::uint64_t w;
      std::memcpy(&w, src + i * 8, 8);
      words_[i].store(w, std::memory_order_release);
    }
    if constexpr (kTailBytes != 0) {
      std::uint64_t w = 0;
      std::memcpy(&w, src + kFullWords * 8, kTailBytes);
      words_[kFullWords].store(w, std::memory_order_release);
    }
    seq_.store(s + 2, std::memory_order_release);
  }

  /// Fault injection for tests: like store(), but calls `mid()` while the write is half done (sequence
  /// odd, half of the words new), as if the writer thread were preempted there. Owner thread only.
  template <class F>
  void store_with_pause_for_test(const T& value, F&& mid) noexcept {
    std::uint64_t buf[kWords] = {};
    std::memcpy(buf, &value, sizeof(T));
    const std::uint64_t s = seq_.load(std::memory_order_relaxed);
    seq_.store(s + 1, std::memory_order_relaxed);
    for (std::size_t i = 0; i < kWords / 2; ++i) words_[i].store(buf[i], std::memory_order_release);
    mid();
    for (std::size_t i = kWords / 2; i < kWords; ++i) words_[i].store(buf[i], std::memory_order_release);
    seq_.store(s + 2, std::memory_order_release);
  }

  /// One attempt to copy a consistent value. Returns false if a write was in progress or overlapped.
  /// Any thread. Wait-free (never spins).
  [[nodiscard]] bool try_load(T& out) const noexcept {
    const std::uint64_t s0 = seq_.load(std::memory_order_acquire);
    if (s0 & 1U) return false;
    std::uint64_t buf[kWords];
    for (std::size_t i = 0; i < kWords; ++i) buf[i] = words_[i].load(std::memory_order_acquire);
    if (seq_.load(std::memory_order_relaxed) != s0) return false;
    std::memcpy(&out, buf, sizeof(T));
    return true;
  }

  /// One attempt to copy a consistent value of some of T's whole 8-byte words (word k = bytes 8k..8k+7
  /// of T), each into the same bytes of `out`; out's other bytes are left as they were. For a reader
  /// that needs a few fields of every value many times over: the control cycle's pass over all samples
  /// loads 5 of a Sample's 8 words, and they stay in registers instead of going through a copy on the
  /// stack. Any thread. Wait-free (never spins).
  template <std::size_t... K>
  [[nodiscard]] bool try_load_words(T& out) const noexcept {
    static_assert(sizeof...(K) > 0 && ((K < kFullWords) && ...), "whole words of T only");
    const std::uint64_t s0 = seq_.load(std::memory_order_acquire);
    if (s0 & 1U) return false;
    const std::uint64_t w[] = {words_[K].load(std::memory_order_acquire)...};
    if (seq_.load(std::memory_order_relaxed) != s0) return false;
    auto* dst = reinterpret_cast<unsigned char*>(&out);
    std::size_t j = 0;
    (std::memcpy(dst + K * 8, &w[j++], 8), ...);
    return true;
  }

  /// Up to `attempts` tries; false if every one overlapped a write (e.g. the writer was preempted
  /// mid-store). The control thread uses this so that a stalled writer can never delay its cycle.
  [[nodiscard]] bool try_load(T& out, int attempts) const noexcept {
    for (int i = 0; i < attempts; ++i)
      if (try_load(out)) return true;
    return false;
  }

  /// Copy a consistent value, retrying until one is obtained. For non-real-time readers only.
  [[nodiscard]] T load() const noexcept {
    T out;
    while (!try_load(out)) {}
    return out;
  }

  /// Even number of completed stores times two; changes on every store. Any thread.
  [[nodiscard]] std::uint64_t version() const noexcept { return seq_.load(std::memory_order_acquire); }

 private:
  std::atomic<std::uint64_t> seq_{0};
  std::atomic<std::uint64_t> words_[kWords];
};

}  // namespace eqd::core
