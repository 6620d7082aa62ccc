// Avahi session (see mdns.hpp). Avahi's callbacks run on its poll thread; the owner thread takes
// the poll lock around every call into Avahi after the thread has started.
//
// Staying connected: the client is made with AVAHI_CLIENT_NO_FAIL, so that without avahi-daemon it
// waits in AVAHI_CLIENT_CONNECTING and connects by itself when the daemon appears on the bus. When
// the daemon goes away (or restarts, or the system D-Bus does) the client enters AVAHI_CLIENT_FAILURE
// (AVAHI_ERR_DISCONNECTED) and is dead for good: a timer on the poll thread then frees it and makes a
// new one, which browses and publishes again once it runs. The timer, not the failure callback, does
// that: the callback runs inside libdbus's dispatch of the very connection the free would close.
#include "eqd/discovery/mdns.hpp"

#include <avahi-client/client.h>
#include <avahi-client/lookup.h>
#include <avahi-client/publish.h>
#include <avahi-common/address.h>
#include <avahi-common/alternative.h>
#include <avahi-common/error.h>
#include <avahi-common/malloc.h>
#include <avahi-common/strlst.h>
#include <avahi-common/thread-watch.h>
#include <avahi-common/timeval.h>

#include <algorithm>
#include <atomic>
#include <mutex>

namespace eqd::discovery {

namespace {
// Delay before a new client replaces a failed one, and between attempts while the system D-Bus
// cannot be reached. A restarted avahi-daemon is back within about a second; polling faster would
// only spin while the bus is gone.
constexpr unsigned kReconnectDelay_ms = 1000;
}  // namespace

struct MdnsSession::Impl {
  AvahiThreadedPoll* poll = nullptr;
  const AvahiPoll* api = nullptr;
  bool running = false;  ///< poll thread started (owner thread only)
  EventSink on_event;
  StatusSink on_status;
  std::atomic<bool> up{false};  ///< connected to a running avahi-daemon

  // Touched on the poll thread (callbacks, timer) and by the owner under the poll lock (or before the
  // poll thread runs).
  AvahiClient* client = nullptr;     ///< the current client; replaced by reconnect()
  AvahiEntryGroup* group = nullptr;  ///< of `client` (freed with it)
  AvahiTimeout* retry = nullptr;     ///< arms reconnect(); disabled while not needed
  bool browsing = false;             ///< browsers for `types` exist on `client`
  bool report = false;               ///< start() has returned: changes go to on_status
  std::vector<std::string> types;    ///< browsed types: browsed again on every new client
  std::vector<PublishedService> services;
  std::vector<std::string> registered_names;

  mutable std::mutex reason_mutex;  ///< guards `reason` (read from any thread)
  std::string reason;               ///< why not connected; empty when connected

  /// Locks the poll thread out while the owner calls into Avahi.
  struct Lock {
    explicit Lock(Impl& i) : impl(i) {
      if (impl.running) avahi_threaded_poll_lock(impl.poll);
    }
    ~Lock() {
      if (impl.running) avahi_threaded_poll_unlock(impl.poll);
    }
    Impl& impl;
  };

  void set_reason(std::string why) {
    std::lock_guard<std::mutex> lock(reason_mutex);
    reason = std::move(why);
  }

  void notify(MdnsStatus::Kind kind, std::string text) {
    if (report && on_status) on_status(MdnsStatus{kind, std::move(text)});
  }

  // Poll thread: the daemon answers (again) on client `c`.
  void now_up(AvahiClient* c) {
    if (!browsing) {
      browsing = true;
      for (const std::string& t : types)
        if (const std::string e = browse_on(c, t); !e.empty()) notify(MdnsStatus::Kind::problem, e);
    }
    if (!up.exchange(true)) {
      set_reason({});
      notify(MdnsStatus::Kind::connected, "connected to avahi-daemon");
    }
  }

  // Poll thread: not connected (`why`). `replace`: this client is dead, a new one follows after the
  // delay; else it waits for the daemon by itself (AVAHI_CLIENT_CONNECTING).
  void now_down(const std::string& why, bool replace) {
    set_reason(why);
    if (up.exchange(false)) notify(MdnsStatus::Kind::lost, why);
    if (replace) arm_retry();
  }

  void arm_retry() {
    if (retry == nullptr) return;
    timeval tv{};
    api->timeout_update(retry, avahi_elapse_time(&tv, kReconnectDelay_ms, 0));
  }

  // Poll thread (timer) or owner before the thread runs: a new client in place of the old one.
  void reconnect() {
    if (client != nullptr) avahi_client_free(client);  // also frees its browsers, resolvers and group
    client = nullptr;
    group = nullptr;
    browsing = false;
    registered_names.clear();
    int error = 0;
    // The callback may run inside avahi_client_new (with the new client as `c`): it uses only `c`.
    AvahiClient* c = avahi_client_new(api, AVAHI_CLIENT_NO_FAIL, &Impl::on_client, this, &error);
    if (c == nullptr) {
      // NO_FAIL covers a missing avahi-daemon; this is the system D-Bus itself: try again later.
      now_down(std::string("cannot connect to the system D-Bus: ") + avahi_strerror(error), true);
      return;
    }
    client = c;
    if (avahi_client_get_state(c) == AVAHI_CLIENT_CONNECTING) now_down("Daemon not running", false);
  }

  static void on_retry(AvahiTimeout* t, void* userdata) {
    auto* self = static_cast<Impl*>(userdata);
    self->api->timeout_update(t, nullptr);  // one shot
    self->reconnect();
  }

  std::string browse_on(AvahiClient* c, const std::string& type) {
    AvahiServiceBrowser* b = avahi_service_browser_new(c, AVAHI_IF_UNSPEC, AVAHI_PROTO_UNSPEC, type.c_str(), nullptr,
                                                       static_cast<AvahiLookupFlags>(0), &Impl::on_browse, this);
    if (b == nullptr) return "cannot browse " + type + ": " + avahi_strerror(avahi_client_errno(c));
    return {};  // freed with the client
  }

  // Poll thread (or owner under the lock): (re)creates the entry group from `services`.
  std::string register_services(AvahiClient* c) {
    if (services.empty()) {
      if (group != nullptr) avahi_entry_group_reset(group);
      return {};
    }
    if (group == nullptr) {
      group = avahi_entry_group_new(c, &Impl::on_group, this);
      if (group == nullptr)
        return std::string("cannot create an entry group: ") + avahi_strerror(avahi_client_errno(c));
    } else {
      avahi_entry_group_reset(group);
    }
    registered_names.clear();
    for (PublishedService& s : services) {
      for (int attempt = 0;; ++attempt) {
        AvahiStringList* txt = nullptr;
        for (const std::string& t : s.txt)
          txt = avahi_string_list_add_arbitrary(txt, reinterpret_cast<const std::uint8_t*>(t.data()), t.size());
        txt = avahi_string_list_reverse(
            txt);  // add_arbitrary prepends: keep the given order, as avahi_string_list_new does
        const int rc = avahi_entry_group_add_service_strlst(group, AVAHI_IF_UNSPEC, AVAHI_PROTO_UNSPEC,
                                                            static_cast<AvahiPublishFlags>(0), s.name.c_str(),
                                                            s.type.c_str(), nullptr, nullptr, s.port, txt);
        avahi_string_list_free(txt);
        if (rc == AVAHI_ERR_COLLISION && attempt < 20) {
          rename(s);
          continue;
        }
        if (rc < 0) return "cannot add service '" + s.name + "' (" + s.type + "): " + avahi_strerror(rc);
        break;
      }
      registered_names.push_back(s.name);
    }
    const int rc = avahi_entry_group_commit(group);
    if (rc < 0) return std::string("cannot commit the services: ") + avahi_strerror(rc);
    return {};
  }

  static void rename(PublishedService& s) {
    char* alt = avahi_alternative_service_name(s.name.c_str());
    s.name = alt;
    avahi_free(alt);
  }

  static void on_group(AvahiEntryGroup* g, AvahiEntryGroupState state, void* userdata) {
    auto* self = static_cast<Impl*>(userdata);
    if (state == AVAHI_ENTRY_GROUP_COLLISION) {
      // Another host announces one of these names: move all of ours to alternative names.
      for (PublishedService& s : self->services) rename(s);
      if (const std::string e = self->register_services(avahi_entry_group_get_client(g)); !e.empty())
        self->notify(MdnsStatus::Kind::problem, "publishing: " + e);
    } else if (state == AVAHI_ENTRY_GROUP_FAILURE) {
      self->notify(MdnsStatus::Kind::problem, std::string("publishing failed: ") +
                                                  avahi_strerror(avahi_client_errno(avahi_entry_group_get_client(g))));
      self->arm_retry();  // a new client publishes again
    }
  }

  static void on_client(AvahiClient* c, AvahiClientState state, void* userdata) {
    auto* self = static_cast<Impl*>(userdata);
    switch (state) {
      case AVAHI_CLIENT_S_RUNNING:
        // The host name is established (again): (re)announce.
        self->now_up(c);
        if (!self->services.empty())
          if (const std::string e = self->register_services(c); !e.empty()) self->notify(MdnsStatus::Kind::problem, e);
        break;
      case AVAHI_CLIENT_S_COLLISION:
      case AVAHI_CLIENT_S_REGISTERING:
        // The daemon runs (browsing works) but our host name is being (re)registered: withdraw until it is.
        self->now_up(c);
        if (self->group != nullptr) avahi_entry_group_reset(self->group);
        break;
      case AVAHI_CLIENT_FAILURE:
        // Usually AVAHI_ERR_DISCONNECTED: avahi-daemon (or the bus) went away. This client is dead.
        self->now_down(std::string("lost avahi-daemon: ") + avahi_strerror(avahi_client_errno(c)), true);
        break;
      case AVAHI_CLIENT_CONNECTING:
        // Only with AVAHI_CLIENT_NO_FAIL: waiting for avahi-daemon to appear on the bus.
        self->now_down("Daemon not running", false);
        break;
    }
  }

  static void on_resolved(AvahiServiceResolver* r, AvahiIfIndex, AvahiProtocol, AvahiResolverEvent event,
                          const char* name, const char* type, const char* domain, const char* host_name,
                          const AvahiAddress* a, std::uint16_t port, AvahiStringList* txt, AvahiLookupResultFlags,
                          void* userdata) {
    auto* self = static_cast<Impl*>(userdata);
    MdnsEvent ev;
    ev.service.instance = name != nullptr ? name : "";
    ev.service.type = type != nullptr ? type : "";
    ev.service.domain = domain != nullptr ? domain : "";
    if (event == AVAHI_RESOLVER_FOUND) {
      ev.kind = MdnsEvent::Kind::resolved;
      ev.service.host_name = host_name != nullptr ? host_name : "";
      if (a != nullptr && a->proto == AVAHI_PROTO_INET) {
        char text[AVAHI_ADDRESS_STR_MAX];
        avahi_address_snprint(text, sizeof text, a);
        ev.service.address = text;
      }
      ev.service.port = port;
      for (AvahiStringList* t = txt; t != nullptr; t = avahi_string_list_get_next(t))
        ev.service.txt.emplace_back(reinterpret_cast<const char*>(avahi_string_list_get_text(t)),
                                    avahi_string_list_get_size(t));
    } else {
      ev.kind = MdnsEvent::Kind::resolve_failed;
      ev.error = avahi_strerror(avahi_client_errno(avahi_service_resolver_get_client(r)));
    }
    avahi_service_resolver_free(r);
    if (self->on_event) self->on_event(ev);
  }

  static void on_browse(AvahiServiceBrowser* b, AvahiIfIndex interface, AvahiProtocol protocol, AvahiBrowserEvent event,
                        const char* name, const char* type, const char* domain, AvahiLookupResultFlags,
                        void* userdata) {
    auto* self = static_cast<Impl*>(userdata);
    AvahiClient* c = avahi_service_browser_get_client(b);
    switch (event) {
      case AVAHI_BROWSER_NEW:
        // AVAHI_PROTO_INET: eqd connects over IPv4 (UNSPEC may resolve to an IPv6 link-local address).
        if (avahi_service_resolver_new(c, interface, protocol, name, type, domain, AVAHI_PROTO_INET,
                                       static_cast<AvahiLookupFlags>(0), &Impl::on_resolved, self) == nullptr) {
          MdnsEvent ev;
          ev.kind = MdnsEvent::Kind::resolve_failed;
          ev.service.instance = name;
          ev.service.type = type;
          ev.error = avahi_strerror(avahi_client_errno(c));
          if (self->on_event) self->on_event(ev);
        }
        break;
      case AVAHI_BROWSER_REMOVE: {
        MdnsEvent ev;
        ev.kind = MdnsEvent::Kind::removed;
        ev.service.instance = name;
        ev.service.type = type;
        ev.service.domain = domain;
        if (self->on_event) self->on_event(ev);
        break;
      }
      case AVAHI_BROWSER_FAILURE:
        self->notify(MdnsStatus::Kind::problem,
                     std::string("browsing failed: ") + avahi_strerror(avahi_client_errno(c)));
        self->arm_retry();  // a new client browses again
        break;
      case AVAHI_BROWSER_ALL_FOR_NOW:
      case AVAHI_BROWSER_CACHE_EXHAUSTED:
        break;
    }
  }
};

MdnsSession::MdnsSession() : impl_(std::make_unique<Impl>()) {}

MdnsSession::~MdnsSession() { stop(); }

std::string MdnsSession::start(EventSink on_event, StatusSink on_status) {
  if (impl_->poll != nullptr) return "already started";
  impl_->on_event = std::move(on_event);
  impl_->on_status = std::move(on_status);
  impl_->poll = avahi_threaded_poll_new();
  if (impl_->poll == nullptr) return "cannot create Avahi's threaded poll";
  impl_->api = avahi_threaded_poll_get(impl_->poll);
  impl_->retry = impl_->api->timeout_new(impl_->api, nullptr, &Impl::on_retry, impl_.get());  // disabled
  // The first client on this thread (the poll thread does not run yet): its state is known at return.
  impl_->reconnect();
  impl_->report = true;  // from now on every change is news to the owner
  if (avahi_threaded_poll_start(impl_->poll) < 0) {
    if (impl_->client != nullptr) avahi_client_free(impl_->client);
    impl_->client = nullptr;
    avahi_threaded_poll_free(impl_->poll);  // frees the timer too
    impl_->poll = nullptr;
    impl_->retry = nullptr;
    return "cannot start Avahi's poll thread";
  }
  impl_->running = true;
  return {};
}

bool MdnsSession::connected() const noexcept { return impl_->up.load(); }

std::string MdnsSession::not_connected_reason() const {
  std::lock_guard<std::mutex> lock(impl_->reason_mutex);
  return impl_->reason;
}

std::string MdnsSession::browse(const std::string& type) {
  if (impl_->poll == nullptr) return "not started";
  Impl::Lock lock(*impl_);
  impl_->types.push_back(type);
  // Not connected (or browsers not made yet): now_up() browses every type when it is.
  if (impl_->client == nullptr || !impl_->browsing) return {};
  return impl_->browse_on(impl_->client, type);
}

std::string MdnsSession::publish(std::vector<PublishedService> services) {
  if (impl_->poll == nullptr) return "not started";
  Impl::Lock lock(*impl_);
  impl_->services = std::move(services);
  // Not running yet (no daemon, or host name being registered): on_client registers them when it is.
  if (impl_->client == nullptr || avahi_client_get_state(impl_->client) != AVAHI_CLIENT_S_RUNNING) return {};
  return impl_->register_services(impl_->client);
}

std::vector<std::string> MdnsSession::published_names() const {
  if (impl_->poll == nullptr) return {};
  Impl::Lock lock(*impl_);
  return impl_->registered_names;
}

void MdnsSession::stop() {
  if (impl_->poll == nullptr) return;
  if (impl_->running) avahi_threaded_poll_stop(impl_->poll);
  impl_->running = false;
  // Frees the browsers, resolvers and the entry group too (withdrawing the services).
  if (impl_->client != nullptr) avahi_client_free(impl_->client);
  impl_->client = nullptr;
  impl_->group = nullptr;
  if (impl_->retry != nullptr) impl_->api->timeout_free(impl_->retry);
  impl_->retry = nullptr;
  avahi_threaded_poll_free(impl_->poll);
  impl_->poll = nullptr;
  impl_->up = false;
}

}  // namespace eqd::discovery
