// Avahi session (see mdns.hpp). Avahi's callbacks run on its poll thread; the owner thread takes
// the poll lock around every call into Avahi after the thread has started.
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

#include <algorithm>
#include <atomic>
#include <mutex>

namespace eqd::discovery {

struct MdnsSession::Impl {
  AvahiThreadedPoll* poll = nullptr;
  AvahiClient* client = nullptr;
  AvahiEntryGroup* group = nullptr;
  bool running = false;  ///< poll thread started
  EventSink on_event;
  FailureSink on_failure;
  std::atomic<bool> failed{false};
  // Touched on the poll thread (callbacks) and by the owner under the poll lock.
  std::vector<PublishedService> services;
  std::vector<std::string> registered_names;

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

  void fail(const std::string& why) {
    if (failed.exchange(true)) return;
    if (on_failure) on_failure(why);
  }

  // Poll thread (or owner under the lock): (re)creates the entry group from `services`.
  std::string register_services(AvahiClient* c) {
    if (services.empty()) {
      if (group != nullptr) avahi_entry_group_reset(group);
      return {};
    }
    if (group == nullptr) {
      group = avahi_entry_group_new(c, &Impl::on_group, this);
      if (group == nullptr) return std::string("cannot create an entry group: ") + avahi_strerror(avahi_client_errno(c));
    } else {
      avahi_entry_group_reset(group);
    }
    registered_names.clear();
    for (PublishedService& s : services) {
      for (int attempt = 0;; ++attempt) {
        AvahiStringList* txt = nullptr;
        for (const std::string& t : s.txt)
          txt = avahi_string_list_add_arbitrary(txt, reinterpret_cast<const std::uint8_t*>(t.data()), t.size());
        txt = avahi_string_list_reverse(txt);  // add_arbitrary prepends: keep the given order, as avahi_string_list_new does
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
      (void)self->register_services(avahi_entry_group_get_client(g));
    } else if (state == AVAHI_ENTRY_GROUP_FAILURE) {
      self->fail(std::string("publishing failed: ") + avahi_strerror(avahi_client_errno(avahi_entry_group_get_client(g))));
    }
  }

  static void on_client(AvahiClient* c, AvahiClientState state, void* userdata) {
    auto* self = static_cast<Impl*>(userdata);
    switch (state) {
      case AVAHI_CLIENT_S_RUNNING:
        // The host name is established (again): (re)announce.
        if (!self->services.empty()) (void)self->register_services(c);
        break;
      case AVAHI_CLIENT_S_COLLISION:
      case AVAHI_CLIENT_S_REGISTERING:
        if (self->group != nullptr) avahi_entry_group_reset(self->group);
        break;
      case AVAHI_CLIENT_FAILURE:
        self->fail(std::string("lost avahi-daemon: ") + avahi_strerror(avahi_client_errno(c)));
        break;
      case AVAHI_CLIENT_CONNECTING:
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
        self->fail(std::string("browsing failed: ") + avahi_strerror(avahi_client_errno(c)));
        break;
      case AVAHI_BROWSER_ALL_FOR_NOW:
      case AVAHI_BROWSER_CACHE_EXHAUSTED:
        break;
    }
  }
};

MdnsSession::MdnsSession() : impl_(std::make_unique<Impl>()) {}

MdnsSession::~MdnsSession() { stop(); }

std::string MdnsSession::start(EventSink on_event, FailureSink on_failure) {
  if (impl_->poll != nullptr) return "already started";
  impl_->on_event = std::move(on_event);
  impl_->on_failure = std::move(on_failure);
  impl_->poll = avahi_threaded_poll_new();
  if (impl_->poll == nullptr) return "cannot create Avahi's threaded poll";
  int error = 0;
  // No AVAHI_CLIENT_NO_FAIL: without avahi-daemon the caller wants to know now, not wait for it.
  impl_->client = avahi_client_new(avahi_threaded_poll_get(impl_->poll), static_cast<AvahiClientFlags>(0),
                                   &Impl::on_client, impl_.get(), &error);
  if (impl_->client == nullptr) {
    avahi_threaded_poll_free(impl_->poll);
    impl_->poll = nullptr;
    return avahi_strerror(error);
  }
  if (avahi_threaded_poll_start(impl_->poll) < 0) {
    avahi_client_free(impl_->client);
    impl_->client = nullptr;
    avahi_threaded_poll_free(impl_->poll);
    impl_->poll = nullptr;
    return "cannot start Avahi's poll thread";
  }
  impl_->running = true;
  return {};
}

std::string MdnsSession::browse(const std::string& type) {
  if (impl_->client == nullptr) return "not connected to avahi-daemon";
  Impl::Lock lock(*impl_);
  AvahiServiceBrowser* b = avahi_service_browser_new(impl_->client, AVAHI_IF_UNSPEC, AVAHI_PROTO_UNSPEC, type.c_str(),
                                                     nullptr, static_cast<AvahiLookupFlags>(0), &Impl::on_browse,
                                                     impl_.get());
  if (b == nullptr) return "cannot browse " + type + ": " + avahi_strerror(avahi_client_errno(impl_->client));
  return {};  // freed with the client
}

std::string MdnsSession::publish(std::vector<PublishedService> services) {
  if (impl_->client == nullptr) return "not connected to avahi-daemon";
  Impl::Lock lock(*impl_);
  impl_->services = std::move(services);
  // Not running yet (host name being registered): on_client registers them when it is.
  if (avahi_client_get_state(impl_->client) != AVAHI_CLIENT_S_RUNNING) return {};
  return impl_->register_services(impl_->client);
}

std::vector<std::string> MdnsSession::published_names() const {
  if (impl_->client == nullptr) return {};
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
  avahi_threaded_poll_free(impl_->poll);
  impl_->poll = nullptr;
}

}  // namespace eqd::discovery
