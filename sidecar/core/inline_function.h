#pragma once
// A move-only callable stored inline (no heap allocation) for captures up to `Size` bytes; larger captures
// fall back to the heap. std::function allocates for any capture that is not trivially copyable (a shared_ptr
// is not), which made every routed request pay one malloc/free per backend reply.
#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace memha {

template <typename Signature, size_t Size = 48>
class InlineFunction;

template <typename R, typename... Args, size_t Size>
class InlineFunction<R(Args...), Size> {
 public:
  InlineFunction() = default;
  InlineFunction(std::nullptr_t) {}  // NOLINT: implicit like std::function

  template <typename F, typename = std::enable_if_t<!std::is_same_v<std::decay_t<F>, InlineFunction>>>
  InlineFunction(F&& f) {  // NOLINT: implicit like std::function
    using Fn = std::decay_t<F>;
    if constexpr (sizeof(Fn) <= Size && alignof(Fn) <= alignof(std::max_align_t) &&
                  std::is_nothrow_move_constructible_v<Fn>) {
      new (&storage_) Fn(std::forward<F>(f));
      ops_ = &InlineOps<Fn>::kOps;
    } else {
      *reinterpret_cast<Fn**>(&storage_) = new Fn(std::forward<F>(f));
      ops_ = &HeapOps<Fn>::kOps;
    }
  }

  InlineFunction(InlineFunction&& other) noexcept { MoveFrom(other); }
  InlineFunction& operator=(InlineFunction&& other) noexcept {
    if (this != &other) {
      Reset();
      MoveFrom(other);
    }
    return *this;
  }
  InlineFunction& operator=(std::nullptr_t) {
    Reset();
    return *this;
  }
  InlineFunction(const InlineFunction&) = delete;
  InlineFunction& operator=(const InlineFunction&) = delete;
  ~InlineFunction() { Reset(); }

  explicit operator bool() const { return ops_ != nullptr; }
  R operator()(Args... args) { return ops_->invoke(&storage_, std::forward<Args>(args)...); }

 private:
  struct Ops {
    R (*invoke)(void*, Args&&...);
    void (*move)(void* from, void* to);
    void (*destroy)(void*);
  };
  template <typename Fn>
  struct InlineOps {
    static R Invoke(void* s, Args&&... args) { return (*static_cast<Fn*>(s))(std::forward<Args>(args)...); }
    static void Move(void* from, void* to) {
      new (to) Fn(std::move(*static_cast<Fn*>(from)));
      static_cast<Fn*>(from)->~Fn();
    }
    static void Destroy(void* s) { static_cast<Fn*>(s)->~Fn(); }
    static constexpr Ops kOps{&Invoke, &Move, &Destroy};
  };
  template <typename Fn>
  struct HeapOps {
    static R Invoke(void* s, Args&&... args) { return (**static_cast<Fn**>(s))(std::forward<Args>(args)...); }
    static void Move(void* from, void* to) { *static_cast<Fn**>(to) = *static_cast<Fn**>(from); }
    static void Destroy(void* s) { delete *static_cast<Fn**>(s); }
    static constexpr Ops kOps{&Invoke, &Move, &Destroy};
  };

  void MoveFrom(InlineFunction& other) {
    if (other.ops_) {
      other.ops_->move(&other.storage_, &storage_);
      ops_ = other.ops_;
      other.ops_ = nullptr;
    }
  }
  void Reset() {
    if (ops_) {
      const Ops* ops = ops_;
      ops_ = nullptr;
      ops->destroy(&storage_);
    }
  }

  alignas(std::max_align_t) unsigned char storage_[Size];
  const Ops* ops_ = nullptr;
};

}  // namespace memha
