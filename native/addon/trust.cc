// spython_trust: the Node addon behind the editor's and the CLI's stamp and
// verify.  It compiles native/core/verify.c and sha256.c, the very code the
// launcher's open_code hook runs, so both give the same answer on the same
// files; nothing here re-implements a check.
//
// Exports (see adapter/trust.ts for the typed wrapper):
//   stamp(paths, options, onProgress?)  -> Promise<{hashes, written, errors}>:
//                                          by column, in the order of paths
//   verify(paths, options, onProgress?) -> Promise<VerifyReport>
//   hashFiles(paths, options, onProgress?) -> Promise<HashEntry[]>
//   walk(paths, {exempt?, extensions?, token?}) -> Promise<string>: the
//                                          paths separated by NUL
//   sha256File(path)                    -> Promise<string>
//   keygen(privatePem, publicPem)       -> undefined (throws)
//   signManifest(manifestPath, privatePem) -> undefined (throws)
//   CancelToken                         -> new CancelToken(); .cancel(); .cancelled
//   info()                              -> defaults, reasons, SHA-256 block function
//   peerCredentials(fd)                 -> {pid, uid, gid} of a Unix socket's
//                                          peer (SO_PEERCRED; throws)
//
// Each call is one Napi::AsyncWorker whose Execute() runs a small pool of
// std::threads (options.threads, default min(4, cores)) pulling files off a
// shared index, and reports progress through a Napi::ThreadSafeFunction at
// most every 50 ms (never once per file).  A CancelToken, passed as
// options.token, is checked between files; a cancelled call rejects with an
// Error whose code is 'ABORT_ERR'.  C++ exceptions are enabled
// (node_addon_api_except).

#include <napi.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

extern "C" {
#include "sha256.h"
#include "verify.h"
}

namespace {

constexpr auto kProgressInterval = std::chrono::milliseconds(50);
constexpr unsigned kMaxThreads = 64;

// ---------------------------------------------------------------------------
// Cancellation

class CancelToken : public Napi::ObjectWrap<CancelToken> {
  public:
    static Napi::Function Define(Napi::Env env)
    {
        return DefineClass(env, "CancelToken",
                           {InstanceMethod("cancel", &CancelToken::Cancel),
                            InstanceAccessor("cancelled",
                                             &CancelToken::Cancelled,
                                             nullptr)});
    }

    explicit CancelToken(const Napi::CallbackInfo &info)
        : Napi::ObjectWrap<CancelToken>(info),
          flag_(std::make_shared<std::atomic<bool>>(false))
    {
    }

    std::shared_ptr<std::atomic<bool>> flag() const { return flag_; }

  private:
    Napi::Value Cancel(const Napi::CallbackInfo &info)
    {
        flag_->store(true);
        return info.Env().Undefined();
    }

    Napi::Value Cancelled(const Napi::CallbackInfo &info)
    {
        return Napi::Boolean::New(info.Env(), flag_->load());
    }

    std::shared_ptr<std::atomic<bool>> flag_;
};

// The constructor, kept per environment (worker threads each load the addon).
struct AddonData {
    Napi::FunctionReference cancel_token;
};

// ---------------------------------------------------------------------------
// Argument parsing

enum class Mode { Stamp, Verify, Hash };

struct Options {
    std::string xattr_name;     // empty: the default
    size_t max_size = 0;        // 0: the default
    std::string manifest;       // verify: manifest mode when set
    std::string manifest_key;
    std::vector<std::string> exempt;
    unsigned threads = 0;
    std::shared_ptr<std::atomic<bool>> cancel;
};

unsigned DefaultThreads()
{
    unsigned cores = std::thread::hardware_concurrency();
    return std::max(1u, std::min(4u, cores == 0 ? 1u : cores));
}

std::vector<std::string> ReadPaths(const Napi::Value &value)
{
    if (!value.IsArray()) {
        throw Napi::TypeError::New(value.Env(),
                                   "paths must be an array of strings");
    }
    Napi::Array array = value.As<Napi::Array>();
    std::vector<std::string> paths;
    paths.reserve(array.Length());
    for (uint32_t i = 0; i < array.Length(); i++) {
        Napi::Value v = array.Get(i);
        if (!v.IsString()) {
            throw Napi::TypeError::New(
                value.Env(), "paths[" + std::to_string(i) + "] is not a string");
        }
        std::string p = v.As<Napi::String>().Utf8Value();
        if (p.empty() || p.find('\0') != std::string::npos) {
            throw Napi::TypeError::New(
                value.Env(), "paths[" + std::to_string(i) + "] is not a path");
        }
        paths.push_back(std::move(p));
    }
    return paths;
}

std::string OptionalString(const Napi::Object &o, const char *key)
{
    Napi::Value v = o.Get(key);
    if (v.IsUndefined() || v.IsNull()) {
        return std::string();
    }
    if (!v.IsString()) {
        throw Napi::TypeError::New(o.Env(),
                                   std::string("options.") + key +
                                       " must be a string");
    }
    std::string s = v.As<Napi::String>().Utf8Value();
    if (s.empty() || s.find('\0') != std::string::npos) {
        throw Napi::TypeError::New(o.Env(), std::string("options.") + key +
                                                " must be a non-empty string");
    }
    return s;
}

double OptionalNumber(const Napi::Object &o, const char *key, double min,
                      double max)
{
    Napi::Value v = o.Get(key);
    if (v.IsUndefined() || v.IsNull()) {
        return 0;
    }
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
    if (!v.IsNumber() || d != static_cast<double>(static_cast<long long>(d)) ||
        d < min || d > max) {
        throw Napi::TypeError::New(
            o.Env(), std::string("options.") + key + " must be an integer from " +
                         std::to_string(static_cast<long long>(min)) + " to " +
                         std::to_string(static_cast<long long>(max)));
    }
    return d;
}

Options ReadOptions(const Napi::Value &value, Mode mode)
{
    Options opt;
    if (value.IsUndefined() || value.IsNull()) {
        opt.threads = DefaultThreads();
        return opt;
    }
    if (!value.IsObject()) {
        throw Napi::TypeError::New(value.Env(), "options must be an object");
    }
    Napi::Object o = value.As<Napi::Object>();
    opt.xattr_name = OptionalString(o, "xattrName");
    opt.max_size = static_cast<size_t>(
        OptionalNumber(o, "maxSize", 1, 9007199254740991.0));
    opt.threads = static_cast<unsigned>(OptionalNumber(o, "threads", 1, kMaxThreads));
    if (opt.threads == 0) {
        opt.threads = DefaultThreads();
    }
    if (mode == Mode::Verify) {
        opt.manifest = OptionalString(o, "manifest");
        opt.manifest_key = OptionalString(o, "manifestKey");
        if (opt.manifest.empty() != opt.manifest_key.empty()) {
            throw Napi::TypeError::New(
                o.Env(), "options.manifest and options.manifestKey go together");
        }
        Napi::Value ex = o.Get("exempt");
        if (!ex.IsUndefined() && !ex.IsNull()) {
            opt.exempt = ReadPaths(ex);
        }
    }
    Napi::Value token = o.Get("token");
    if (!token.IsUndefined() && !token.IsNull()) {
        AddonData *data = o.Env().GetInstanceData<AddonData>();
        if (!token.IsObject() ||
            !token.As<Napi::Object>().InstanceOf(data->cancel_token.Value())) {
            throw Napi::TypeError::New(o.Env(),
                                       "options.token must be a CancelToken");
        }
        opt.cancel = CancelToken::Unwrap(token.As<Napi::Object>())->flag();
    }
    return opt;
}

// ---------------------------------------------------------------------------
// Per-file work

struct FileResult {
    int status = 0;         // stamp: 1 written, 0 current, -1 failed;
                            // verify: enum spy_verify_result, or -2 exempt;
                            // hash: 0, or -1 failed
    char hex[SPY_SHA256_HEX_SIZE] = {0};
    std::string detail;
};

// SHA-256 of a regular file, read through one descriptor (never blocking
// on a FIFO).  Returns 0, or -1 with err set.
int HashFile(const std::string &path, char hex[SPY_SHA256_HEX_SIZE],
             std::string &err)
{
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        err = std::string("cannot open ") + path + ": " + std::strerror(errno);
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        err = std::string("cannot hash ") + path + ": " +
              (S_ISDIR(st.st_mode) ? "it is a directory" : "not a regular file");
        close(fd);
        return -1;
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0) {
        (void)fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    }
    struct spy_sha256_ctx ctx;
    spy_sha256_init(&ctx);
    std::vector<unsigned char> buf(64 * 1024);
    off_t off = 0;
    for (;;) {
        ssize_t n = pread(fd, buf.data(), buf.size(), off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            err = std::string("cannot read ") + path + ": " + std::strerror(errno);
            close(fd);
            return -1;
        }
        if (n == 0) {
            break;
        }
        spy_sha256_update(&ctx, buf.data(), static_cast<size_t>(n));
        off += n;
    }
    close(fd);
    unsigned char digest[SPY_SHA256_SIZE];
    spy_sha256_final(&ctx, digest);
    spy_sha256_tohex(digest, hex);
    return 0;
}

bool IsExempt(const std::vector<std::string> &exempt, const std::string &path)
{
    if (exempt.empty()) {
        return false;
    }
    // Like the launcher, which names the file by the descriptor it opened
    // (/proc/self/fd/N), so symlinks resolve before the check.
    char *resolved = realpath(path.c_str(), nullptr);
    if (resolved == nullptr) {
        return false;
    }
    bool hit = false;
    for (const std::string &dir : exempt) {
        size_t n = dir.size();
        if (std::strncmp(resolved, dir.c_str(), n) == 0 &&
            (resolved[n] == '/' || resolved[n] == '\0')) {
            hit = true;
            break;
        }
    }
    free(resolved);
    return hit;
}

const char *ResultCode(int r)
{
    switch (r) {
    case SPY_VERIFY_OK: return "OK";
    case SPY_VERIFY_NO_XATTR: return "NO_XATTR";
    case SPY_VERIFY_MISMATCH: return "MISMATCH";
    case SPY_VERIFY_TOO_LARGE: return "TOO_LARGE";
    case SPY_VERIFY_NOT_REGULAR: return "NOT_REGULAR";
    case SPY_VERIFY_NOEXEC_MOUNT: return "NOEXEC_MOUNT";
    case SPY_VERIFY_NOT_IN_MANIFEST: return "NOT_IN_MANIFEST";
    case SPY_VERIFY_BAD_SIGNATURE: return "BAD_SIGNATURE";
    case SPY_VERIFY_IO_ERROR: return "IO_ERROR";
    case SPY_VERIFY_BAD_MANIFEST: return "BAD_MANIFEST";
    }
    return "UNKNOWN";
}

// ---------------------------------------------------------------------------
// Walking trees: the code files under some paths, for stamp and verify.

struct WalkOptions {
    std::vector<std::string> exempt;        // resolved
    std::vector<std::string> extensions;    // kept from walked directories
    std::shared_ptr<std::atomic<bool>> cancel;
};

class WalkJob : public Napi::AsyncWorker {
  public:
    WalkJob(Napi::Env env, std::vector<std::string> roots, WalkOptions opt)
        : Napi::AsyncWorker(env, "spython_trust walk"), roots_(std::move(roots)),
          opt_(std::move(opt)), deferred_(Napi::Promise::Deferred::New(env))
    {
    }

    Napi::Promise Promise() { return deferred_.Promise(); }

  protected:
    // Directories are walked depth-first, symlinks to directories followed
    // but every directory (by device and inode) entered once, so a link
    // loop ends; files are kept when their names end in one of the
    // extensions, whatever their type (a FIFO named x.py is listed, and
    // verify refuses it).  A root that is not a directory is kept as is,
    // even when it does not exist (stamp and verify then say why).
    void Execute() override
    {
        for (std::string &dir : opt_.exempt) {
            char *resolved = realpath(dir.c_str(), nullptr);
            if (resolved != nullptr) {
                dir = resolved;
                free(resolved);
            }
            else {
                dir.clear();    // missing: exempts nothing
            }
        }
        opt_.exempt.erase(std::remove(opt_.exempt.begin(), opt_.exempt.end(),
                                      std::string()),
                          opt_.exempt.end());
        std::vector<std::string> stack;
        for (const std::string &root : roots_) {
            struct stat st;
            if (stat(root.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
                Enter(root, st, stack);
            }
            else {
                files_.push_back(root);
            }
        }
        while (!stack.empty()) {
            if (opt_.cancel && opt_.cancel->load(std::memory_order_relaxed)) {
                cancelled_ = true;
                SetError("cancelled while walking");
                return;
            }
            std::string dir = std::move(stack.back());
            stack.pop_back();
            Scan(dir, stack);
        }
        std::sort(files_.begin(), files_.end());
        files_.erase(std::unique(files_.begin(), files_.end()), files_.end());
    }

    // One string, the paths separated by NUL (which no path holds): a
    // string and an array slot per path, made through N-API, cost the main
    // thread more than the walk itself did.
    void OnOK() override
    {
        Napi::Env env = Env();
        Napi::HandleScope scope(env);
        std::string joined;
        for (const std::string &file : files_) {
            if (!joined.empty()) {
                joined.push_back('\0');
            }
            joined += file;
        }
        deferred_.Resolve(Napi::String::New(env, joined));
    }

    void OnError(const Napi::Error &e) override
    {
        Napi::Env env = Env();
        Napi::HandleScope scope(env);
        Napi::Error error = Napi::Error::New(env, e.Message());
        if (cancelled_) {
            error.Set("name", Napi::String::New(env, "AbortError"));
            error.Set("code", Napi::String::New(env, "ABORT_ERR"));
        }
        deferred_.Reject(error.Value());
    }

  private:
    bool Exempt(const std::string &dir) const
    {
        if (opt_.exempt.empty()) {
            return false;
        }
        char *resolved = realpath(dir.c_str(), nullptr);
        if (resolved == nullptr) {
            return false;
        }
        bool hit = false;
        for (const std::string &e : opt_.exempt) {
            size_t n = e.size();
            if (std::strncmp(resolved, e.c_str(), n) == 0 &&
                (resolved[n] == '/' || resolved[n] == '\0')) {
                hit = true;
                break;
            }
        }
        free(resolved);
        return hit;
    }

    void Enter(const std::string &dir, const struct stat &st,
               std::vector<std::string> &stack)
    {
        if (!seen_.insert({st.st_dev, st.st_ino}).second || Exempt(dir)) {
            return;
        }
        stack.push_back(dir);
    }

    bool Wanted(const char *name) const
    {
        size_t n = std::strlen(name);
        for (const std::string &ext : opt_.extensions) {
            if (n >= ext.size() &&
                std::memcmp(name + n - ext.size(), ext.data(), ext.size()) == 0) {
                return true;
            }
        }
        return false;
    }

    void Scan(const std::string &dir, std::vector<std::string> &stack)
    {
        int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0) {
            return;     // unreadable directory: nothing to list
        }
        DIR *d = fdopendir(dfd);
        if (d == nullptr) {
            close(dfd);
            return;
        }
        std::string prefix = dir == "/" ? dir : dir + "/";
        std::vector<std::string> subdirs;
        while (struct dirent *e = readdir(d)) {
            const char *name = e->d_name;
            if (name[0] == '.' && (name[1] == '\0' ||
                                   (name[1] == '.' && name[2] == '\0'))) {
                continue;
            }
            unsigned char type = e->d_type;
            struct stat st;
            if (type == DT_UNKNOWN) {
                if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
                    continue;
                }
                type = S_ISDIR(st.st_mode) ? DT_DIR
                       : S_ISLNK(st.st_mode) ? DT_LNK : DT_REG;
            }
            if (type == DT_DIR || type == DT_LNK) {
                if (fstatat(dfd, name, &st, 0) == 0 && S_ISDIR(st.st_mode)) {
                    std::string sub = prefix + name;
                    if (seen_.insert({st.st_dev, st.st_ino}).second &&
                        !Exempt(sub)) {
                        subdirs.push_back(std::move(sub));
                    }
                    continue;
                }
                if (type == DT_DIR) {
                    continue;   // vanished meanwhile
                }
            }
            if (Wanted(name)) {
                files_.push_back(prefix + name);
            }
        }
        closedir(d);
        // Depth-first, in name order (the final list is sorted anyway).
        std::sort(subdirs.rbegin(), subdirs.rend());
        for (std::string &s : subdirs) {
            stack.push_back(std::move(s));
        }
    }

    struct DevIno {
        size_t operator()(const std::pair<dev_t, ino_t> &k) const
        {
            return std::hash<uint64_t>()(static_cast<uint64_t>(k.first) * 1000003u ^
                                         static_cast<uint64_t>(k.second));
        }
    };

    std::vector<std::string> roots_;
    WalkOptions opt_;
    Napi::Promise::Deferred deferred_;
    std::vector<std::string> files_;
    std::unordered_set<std::pair<dev_t, ino_t>, DevIno> seen_;
    bool cancelled_ = false;
};

// ---------------------------------------------------------------------------
// The job

// State the main thread shares with the progress calls still queued when
// the job settles: once `settled`, late calls are dropped, so the last
// progress the caller sees is the final one.
struct Shared {
    bool settled = false;
    size_t reported = 0;
    Napi::FunctionReference on_progress;
    std::shared_ptr<std::atomic<bool>> cancel;
    Napi::ObjectReference callback_error;    // what onProgress threw
};

class Job : public Napi::AsyncWorker {
  public:
    Job(Napi::Env env, Mode mode, std::vector<std::string> paths, Options opt,
        Napi::Value on_progress)
        : Napi::AsyncWorker(env, "spython_trust"), mode_(mode),
          paths_(std::move(paths)), opt_(std::move(opt)),
          deferred_(Napi::Promise::Deferred::New(env)),
          shared_(std::make_shared<Shared>()), results_(paths_.size())
    {
        if (!opt_.cancel) {
            opt_.cancel = std::make_shared<std::atomic<bool>>(false);
        }
        shared_->cancel = opt_.cancel;
        if (on_progress.IsFunction()) {
            Napi::Function fn = on_progress.As<Napi::Function>();
            shared_->on_progress = Napi::Persistent(fn);
            progress_ = Napi::ThreadSafeFunction::New(
                env, fn, "spython_trust progress", 0, 1);
            has_progress_ = true;
        }
    }

    Napi::Promise Promise() { return deferred_.Promise(); }

  protected:
    void Execute() override
    {
        struct Release {
            Job *job;
            ~Release()
            {
                if (job->has_progress_) {
                    job->progress_.Release();
                }
            }
        } release{this};

        if (!Prepare()) {
            return;
        }
        size_t total = paths_.size();
        unsigned want = std::max(1u, std::min<unsigned>(
                                         opt_.threads, static_cast<unsigned>(
                                                           std::max<size_t>(1, total))));
        std::vector<std::thread> pool;
        for (unsigned i = 0; i < want; i++) {
            {
                std::lock_guard<std::mutex> lock(mutex_);
                running_++;
            }
            try {
                pool.emplace_back(&Job::Work, this);
            }
            catch (const std::system_error &) {
                std::lock_guard<std::mutex> lock(mutex_);
                running_--;
                break;      // fewer threads than asked for
            }
        }
        if (pool.empty()) {
            {
                std::lock_guard<std::mutex> lock(mutex_);
                running_++;
            }
            Work();         // no thread could be started: do it here
        }
        size_t last = 0;
        {
            std::unique_lock<std::mutex> lock(mutex_);
            while (running_ > 0) {
                wake_.wait_for(lock, kProgressInterval);
                size_t done = done_.load();
                if (has_progress_ && done != last && running_ > 0) {
                    last = done;
                    std::shared_ptr<Shared> shared = shared_;
                    // Only `shared` is used: the Job may be gone by then.
                    progress_.NonBlockingCall(
                        [shared, done, total](Napi::Env env, Napi::Function fn) {
                            Deliver(env, fn, *shared, done, total);
                        });
                }
            }
        }
        for (std::thread &t : pool) {
            t.join();
        }
        if (done_.load() < total && opt_.cancel->load()) {
            cancelled_ = true;
            SetError("cancelled after " + std::to_string(done_.load()) +
                     " of " + std::to_string(total) + " files");
        }
    }

    void OnOK() override
    {
        Napi::Env env = Env();
        Napi::HandleScope scope(env);
        if (Settle()) {
            return;
        }
        size_t total = paths_.size();
        if (!shared_->on_progress.IsEmpty() && shared_->reported != total) {
            shared_->reported = total;
            try {
                shared_->on_progress.Call(
                    {Napi::Number::New(env, static_cast<double>(total)),
                     Napi::Number::New(env, static_cast<double>(total))});
            }
            catch (const Napi::Error &e) {
                deferred_.Reject(e.Value());
                return;
            }
        }
        switch (mode_) {
        case Mode::Stamp: deferred_.Resolve(StampResults(env)); break;
        case Mode::Verify: deferred_.Resolve(VerifyResults(env)); break;
        case Mode::Hash: deferred_.Resolve(HashResults(env)); break;
        }
    }

    void OnError(const Napi::Error &e) override
    {
        Napi::Env env = Env();
        Napi::HandleScope scope(env);
        if (Settle()) {
            return;
        }
        Napi::Error error = Napi::Error::New(env, e.Message());
        if (cancelled_) {
            error.Set("name", Napi::String::New(env, "AbortError"));
            error.Set("code", Napi::String::New(env, "ABORT_ERR"));
            error.Set("done", Napi::Number::New(env, static_cast<double>(done_.load())));
        }
        else {
            error.Set("code", Napi::String::New(env, fail_code_));
            if (fail_reason_ >= 0) {
                error.Set("reason", Napi::String::New(env, spy_verify_reason(
                                                               static_cast<spy_verify_result>(fail_reason_))));
                error.Set("result", Napi::String::New(env, ResultCode(fail_reason_)));
            }
            error.Set("detail", Napi::String::New(env, fail_detail_));
        }
        deferred_.Reject(error.Value());
    }

  private:
    // Marks the job settled; when onProgress threw meanwhile, rejects with
    // that and returns true.
    bool Settle()
    {
        shared_->settled = true;
        if (!shared_->callback_error.IsEmpty()) {
            deferred_.Reject(shared_->callback_error.Value());
            return true;
        }
        return false;
    }

    bool Prepare()
    {
        if (mode_ == Mode::Verify && !opt_.manifest.empty()) {
            enum spy_verify_result why = SPY_VERIFY_OK;
            char err[1024];
            struct spy_manifest *m = spy_manifest_load(
                opt_.manifest.c_str(), opt_.manifest_key.c_str(), &why, err,
                sizeof(err));
            if (m == nullptr) {
                fail_reason_ = why;
                fail_code_ = std::string("ERR_SPY_") + ResultCode(why);
                fail_detail_ = err;
                SetError(std::string(spy_verify_reason(why)) + ": " + err);
                return false;
            }
            manifest_.reset(m);
        }
        for (std::string &dir : opt_.exempt) {
            char *resolved = realpath(dir.c_str(), nullptr);
            if (resolved == nullptr) {
                fail_code_ = "ERR_SPY_EXEMPT";
                fail_detail_ = "verifyExempt directory " + dir + ": " +
                               std::strerror(errno);
                SetError(fail_detail_);
                return false;
            }
            dir = resolved;
            free(resolved);
            while (dir.size() > 1 && dir.back() == '/') {
                dir.pop_back();
            }
        }
        return true;
    }

    void Work()
    {
        struct spy_verify_options vo;
        vo.xattr_name = opt_.xattr_name.empty() ? nullptr : opt_.xattr_name.c_str();
        vo.max_size = opt_.max_size;
        vo.manifest = manifest_.get();
        const size_t total = paths_.size();
        char buf[1024];

        while (!opt_.cancel->load(std::memory_order_relaxed)) {
            size_t i = next_.fetch_add(1);
            if (i >= total) {
                break;
            }
            const std::string &path = paths_[i];
            FileResult &r = results_[i];
            switch (mode_) {
            case Mode::Stamp:
                buf[0] = '\0';
                r.status = spy_stamp_path(path.c_str(), vo.xattr_name, r.hex,
                                          buf, sizeof(buf));
                if (r.status < 0) {
                    r.detail = buf;
                }
                break;
            case Mode::Verify:
                if (IsExempt(opt_.exempt, path)) {
                    r.status = -2;
                    break;
                }
                buf[0] = '\0';
                r.status = spy_verify_path(path.c_str(), &vo, buf, sizeof(buf));
                if (r.status != SPY_VERIFY_OK) {
                    r.detail = buf;
                }
                break;
            case Mode::Hash:
                r.status = HashFile(path, r.hex, r.detail);
                break;
            }
            done_.fetch_add(1);
        }
        std::lock_guard<std::mutex> lock(mutex_);
        running_--;
        wake_.notify_all();
    }

    // By column, in the order of the paths given (adapter/trust.ts pairs
    // them up): an object per file, made property by property through
    // N-API, cost the main thread more than a tenth of stamping's time.
    Napi::Value StampResults(Napi::Env env)
    {
        const size_t n = paths_.size();
        std::string hashes(n * 2 * SPY_SHA256_SIZE, ' ');
        Napi::TypedArrayOf<int8_t> written = Napi::TypedArrayOf<int8_t>::New(env, n);
        Napi::Array errors = Napi::Array::New(env);
        uint32_t failed = 0;
        for (size_t i = 0; i < n; i++) {
            const FileResult &r = results_[i];
            written[i] = static_cast<int8_t>(r.status < 0 ? -1 : r.status);
            if (r.status < 0) {
                Napi::Array error = Napi::Array::New(env, 2);
                error.Set(0u, Napi::Number::New(env, static_cast<double>(i)));
                error.Set(1u, r.detail);
                errors.Set(failed++, error);
            }
            else {
                hashes.replace(i * 2 * SPY_SHA256_SIZE, 2 * SPY_SHA256_SIZE, r.hex,
                               2 * SPY_SHA256_SIZE);
            }
        }
        napi_value text;
        NAPI_THROW_IF_FAILED(env, napi_create_string_latin1(env, hashes.data(), hashes.size(), &text),
                             Napi::Value());
        Napi::Object out = Napi::Object::New(env);
        out.Set("hashes", text);
        out.Set("written", written);
        out.Set("errors", errors);
        return out;
    }

    Napi::Value VerifyResults(Napi::Env env)
    {
        Napi::Object out = Napi::Object::New(env);
        Napi::Array failures = Napi::Array::New(env);
        size_t ok = 0, exempt = 0;
        uint32_t k = 0;
        for (size_t i = 0; i < paths_.size(); i++) {
            const FileResult &r = results_[i];
            if (r.status == SPY_VERIFY_OK) {
                ok++;
                continue;
            }
            if (r.status == -2) {
                exempt++;
                continue;
            }
            Napi::Object f = Napi::Object::New(env);
            f.Set("path", paths_[i]);
            f.Set("reason", spy_verify_reason(static_cast<spy_verify_result>(r.status)));
            f.Set("result", ResultCode(r.status));
            f.Set("detail", r.detail);
            failures.Set(k++, f);
        }
        out.Set("checked", Napi::Number::New(env, static_cast<double>(paths_.size())));
        out.Set("ok", Napi::Number::New(env, static_cast<double>(ok)));
        out.Set("exempt", Napi::Number::New(env, static_cast<double>(exempt)));
        out.Set("failed", Napi::Number::New(env, static_cast<double>(k)));
        out.Set("failures", failures);
        out.Set("mode", Napi::String::New(env, manifest_ ? "manifest" : "xattr"));
        if (manifest_) {
            out.Set("manifestHashes", Napi::Number::New(env, static_cast<double>(
                                                                 spy_manifest_count(manifest_.get()))));
        }
        return out;
    }

    Napi::Value HashResults(Napi::Env env)
    {
        Napi::Array out = Napi::Array::New(env, paths_.size());
        for (size_t i = 0; i < paths_.size(); i++) {
            const FileResult &r = results_[i];
            Napi::Object o = Napi::Object::New(env);
            o.Set("path", paths_[i]);
            if (r.status < 0) {
                o.Set("error", r.detail);
            }
            else {
                o.Set("hash", Napi::String::New(env, r.hex));
            }
            out.Set(static_cast<uint32_t>(i), o);
        }
        return out;
    }

    struct ManifestFree {
        void operator()(struct spy_manifest *m) const { spy_manifest_free(m); }
    };

    // A progress call, on the main thread.  Calls still queued when the
    // job settles are dropped, so the last progress seen is the final one.
    static void Deliver(Napi::Env env, Napi::Function fn, Shared &shared,
                        size_t done, size_t total)
    {
        if (env == nullptr || fn.IsEmpty() || shared.settled ||
            !shared.callback_error.IsEmpty() || done <= shared.reported) {
            return;
        }
        shared.reported = done;
        try {
            fn.Call({Napi::Number::New(env, static_cast<double>(done)),
                     Napi::Number::New(env, static_cast<double>(total))});
        }
        catch (const Napi::Error &e) {
            // A throwing onProgress ends the job with what it threw.
            shared.callback_error = Napi::Persistent(e.Value());
            shared.cancel->store(true);
        }
    }

  private:
    Mode mode_;
    std::vector<std::string> paths_;
    Options opt_;
    Napi::Promise::Deferred deferred_;
    std::shared_ptr<Shared> shared_;
    std::vector<FileResult> results_;
    std::unique_ptr<struct spy_manifest, ManifestFree> manifest_;
    Napi::ThreadSafeFunction progress_;
    bool has_progress_ = false;
    std::atomic<size_t> next_{0};
    std::atomic<size_t> done_{0};
    std::mutex mutex_;
    std::condition_variable wake_;
    unsigned running_ = 0;
    bool cancelled_ = false;
    int fail_reason_ = -1;
    std::string fail_code_ = "ERR_SPY";
    std::string fail_detail_;
};

}  // namespace

namespace {

Napi::Value Start(const Napi::CallbackInfo &info, Mode mode)
{
    Napi::Env env = info.Env();
    std::vector<std::string> paths = ReadPaths(info[0]);
    Options opt = ReadOptions(info[1], mode);
    Napi::Value on_progress = info[2];
    if (!on_progress.IsUndefined() && !on_progress.IsNull() &&
        !on_progress.IsFunction()) {
        throw Napi::TypeError::New(env, "onProgress must be a function");
    }
    Job *job = new Job(env, mode, std::move(paths), std::move(opt), on_progress);
    Napi::Promise promise = job->Promise();
    job->Queue();
    return promise;
}

Napi::Value Walk(const Napi::CallbackInfo &info)
{
    Napi::Env env = info.Env();
    std::vector<std::string> roots = ReadPaths(info[0]);
    WalkOptions opt;
    opt.extensions = {".py", ".pyc"};
    if (info[1].IsObject()) {
        Napi::Object o = info[1].As<Napi::Object>();
        Napi::Value ex = o.Get("exempt");
        if (!ex.IsUndefined() && !ex.IsNull()) {
            opt.exempt = ReadPaths(ex);
        }
        Napi::Value exts = o.Get("extensions");
        if (!exts.IsUndefined() && !exts.IsNull()) {
            opt.extensions = ReadPaths(exts);
        }
        Options common = ReadOptions(o, Mode::Hash);
        opt.cancel = common.cancel;
    }
    else if (!info[1].IsUndefined() && !info[1].IsNull()) {
        throw Napi::TypeError::New(env, "options must be an object");
    }
    WalkJob *job = new WalkJob(env, std::move(roots), std::move(opt));
    Napi::Promise promise = job->Promise();
    job->Queue();
    return promise;
}

Napi::Value Stamp(const Napi::CallbackInfo &info)
{
    return Start(info, Mode::Stamp);
}

Napi::Value Verify(const Napi::CallbackInfo &info)
{
    return Start(info, Mode::Verify);
}

Napi::Value HashFiles(const Napi::CallbackInfo &info)
{
    return Start(info, Mode::Hash);
}

std::string PathArg(const Napi::CallbackInfo &info, size_t i, const char *what)
{
    if (!info[i].IsString()) {
        throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a string");
    }
    std::string s = info[i].As<Napi::String>().Utf8Value();
    if (s.empty() || s.find('\0') != std::string::npos) {
        throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a path");
    }
    return s;
}

// One file's SHA-256, off the main thread.
Napi::Value Sha256File(const Napi::CallbackInfo &info)
{
    Napi::Env env = info.Env();
    std::vector<std::string> paths{PathArg(info, 0, "path")};
    Options opt;
    opt.threads = 1;
    Job *job = new Job(env, Mode::Hash, std::move(paths), std::move(opt),
                       env.Undefined());
    Napi::Promise promise = job->Promise();
    job->Queue();
    // hashFiles' entry array, unwrapped by the caller in JS would be
    // clumsier: resolve with the hex string (or reject) instead.
    Napi::Function then = Napi::Function::New(env, [](const Napi::CallbackInfo &ci) -> Napi::Value {
        Napi::Object entry = ci[0].As<Napi::Array>().Get(0u).As<Napi::Object>();
        if (entry.Has("error")) {
            Napi::Error e = Napi::Error::New(ci.Env(), entry.Get("error").As<Napi::String>().Utf8Value());
            e.Set("code", Napi::String::New(ci.Env(), "ERR_SPY_IO_ERROR"));
            throw e;
        }
        return entry.Get("hash");
    });
    return promise.Get("then").As<Napi::Function>().Call(promise, {then});
}

Napi::Value Keygen(const Napi::CallbackInfo &info)
{
    std::string priv = PathArg(info, 0, "privatePem");
    std::string pub = PathArg(info, 1, "publicPem");
    char err[1024];
    if (spy_manifest_keygen(priv.c_str(), pub.c_str(), err, sizeof(err)) != 0) {
        Napi::Error e = Napi::Error::New(info.Env(), err);
        e.Set("code", Napi::String::New(info.Env(), "ERR_SPY_KEYGEN"));
        throw e;
    }
    return info.Env().Undefined();
}

Napi::Value SignManifest(const Napi::CallbackInfo &info)
{
    std::string manifest = PathArg(info, 0, "manifestPath");
    std::string priv = PathArg(info, 1, "privatePem");
    char err[1024];
    if (spy_manifest_sign(manifest.c_str(), priv.c_str(), err, sizeof(err)) != 0) {
        Napi::Error e = Napi::Error::New(info.Env(), err);
        e.Set("code", Napi::String::New(info.Env(), "ERR_SPY_SIGN"));
        throw e;
    }
    return info.Env().Undefined();
}

Napi::Value Info(const Napi::CallbackInfo &info)
{
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("xattrName", SPY_VERIFY_XATTR_NAME);
    o.Set("maxSize", Napi::Number::New(env, SPY_VERIFY_MAX_SIZE));
    o.Set("sha256", spy_sha256_impl());
    o.Set("defaultThreads", Napi::Number::New(env, DefaultThreads()));
    Napi::Object reasons = Napi::Object::New(env);
    for (int r = SPY_VERIFY_OK; r <= SPY_VERIFY_BAD_MANIFEST; r++) {
        reasons.Set(ResultCode(r), spy_verify_reason(static_cast<spy_verify_result>(r)));
    }
    o.Set("reasons", reasons);
    return o;
}

// The channel's peer check (adapter/peers.ts) has no other way to learn
// who is at the other end of a Unix socket: Node exposes no SO_PEERCRED.
Napi::Value PeerCredentials(const Napi::CallbackInfo &info)
{
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsNumber()) {
        throw Napi::TypeError::New(env, "peerCredentials(fd): fd must be a number");
    }
    int fd = info[0].As<Napi::Number>().Int32Value();
    struct ucred cred;
    socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
        int saved = errno;
        Napi::Error e = Napi::Error::New(
            env, std::string("SO_PEERCRED: ") + strerror(saved));
        e.Set("code", Napi::String::New(env, "ERR_SPY_PEERCRED"));
        e.Set("errno", Napi::Number::New(env, saved));
        throw e;
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("pid", Napi::Number::New(env, cred.pid));
    o.Set("uid", Napi::Number::New(env, cred.uid));
    o.Set("gid", Napi::Number::New(env, cred.gid));
    return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports)
{
    auto *data = new AddonData();
    Napi::Function token = CancelToken::Define(env);
    data->cancel_token = Napi::Persistent(token);
    env.SetInstanceData<AddonData>(data);
    exports.Set("CancelToken", token);
    exports.Set("stamp", Napi::Function::New(env, Stamp, "stamp"));
    exports.Set("verify", Napi::Function::New(env, Verify, "verify"));
    exports.Set("hashFiles", Napi::Function::New(env, HashFiles, "hashFiles"));
    exports.Set("sha256File", Napi::Function::New(env, Sha256File, "sha256File"));
    exports.Set("keygen", Napi::Function::New(env, Keygen, "keygen"));
    exports.Set("signManifest", Napi::Function::New(env, SignManifest, "signManifest"));
    exports.Set("walk", Napi::Function::New(env, Walk, "walk"));
    exports.Set("info", Napi::Function::New(env, Info, "info"));
    exports.Set("peerCredentials",
                Napi::Function::New(env, PeerCredentials, "peerCredentials"));
    return exports;
}

}  // namespace

NODE_API_MODULE(spython_trust, Init)
