#pragma once
// Log-linear latency histogram (HDR-style): exact below 128 ns, then 64 sub-buckets per power of two
// (<= 1.6% relative error), up to ~2^42 ns. Fixed memory, O(1) record, mergeable.
#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace memha::bench {

class LatencyHistogram {
 public:
  static constexpr int kSubBits = 7;                      // 2^7 = 128 linear buckets at the bottom
  static constexpr uint64_t kHalf = uint64_t{1} << (kSubBits - 1);  // 64 sub-buckets per octave above
  static constexpr int kMaxExp = 42 - kSubBits + 1;
  static constexpr size_t kBuckets = (kMaxExp + 2) * kHalf;

  static size_t IndexOf(uint64_t v) {
    if (v < 2 * kHalf) return static_cast<size_t>(v);
    int msb = 63 - std::countl_zero(v);
    int e = msb - kSubBits + 1;  // >= 1
    if (e > kMaxExp) return kBuckets - 1;
    uint64_t m = v >> e;  // in [kHalf, 2*kHalf)
    return static_cast<size_t>(e) * kHalf + static_cast<size_t>(m);
  }
  // Smallest and largest value that land in bucket `i`.
  static uint64_t LowerBound(size_t i) {
    if (i < 2 * kHalf) return i;
    uint64_t e = i / kHalf - 1, m = i % kHalf + kHalf;
    return m << e;
  }
  static uint64_t UpperBound(size_t i) {
    if (i < 2 * kHalf) return i;
    uint64_t e = i / kHalf - 1, m = i % kHalf + kHalf;
    return ((m + 1) << e) - 1;
  }

  void Record(uint64_t v) {
    ++counts_[IndexOf(v)];
    ++count_;
    sum_ += v;
    max_ = std::max(max_, v);
    min_ = std::min(min_, v);
  }
  void Merge(const LatencyHistogram& o) {
    for (size_t i = 0; i < kBuckets; ++i) counts_[i] += o.counts_[i];
    count_ += o.count_;
    sum_ += o.sum_;
    max_ = std::max(max_, o.max_);
    min_ = std::min(min_, o.min_);
  }
  uint64_t Count() const { return count_; }
  uint64_t Max() const { return count_ ? max_ : 0; }
  uint64_t Min() const { return count_ ? min_ : 0; }
  double Mean() const { return count_ ? static_cast<double>(sum_) / static_cast<double>(count_) : 0.0; }

  // Value at percentile p (0..100]: the upper bound of the bucket holding the ceil(p% * count)-th sample,
  // clamped to the largest value seen (so a percentile never reports more than the max).
  uint64_t Percentile(double p) const {
    if (count_ == 0) return 0;
    double want = p / 100.0 * static_cast<double>(count_);
    auto rank = static_cast<uint64_t>(want);
    if (static_cast<double>(rank) < want) ++rank;
    rank = std::clamp<uint64_t>(rank, 1, count_);
    uint64_t seen = 0;
    for (size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(UpperBound(i), max_);
    }
    return max_;
  }

 private:
  std::array<uint64_t, kBuckets> counts_{};
  uint64_t count_ = 0, sum_ = 0, max_ = 0, min_ = UINT64_MAX;
};

}  // namespace memha::bench
