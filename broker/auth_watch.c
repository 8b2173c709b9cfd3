/*
 * auth_watch.c — notice a changed password file without a signal.
 *
 * `roost passwd NAME` replaces the file by renaming a new one over it, and
 * the file may not exist yet when roost starts, so the watch is on the
 * file's DIRECTORY (inotify): IN_CLOSE_WRITE for a file written in place,
 * IN_MOVED_TO for a rename over it, IN_DELETE / IN_MOVED_FROM for a file
 * taken away. Only events naming a watched file count; the temporary files
 * beside it are ignored. The inotify descriptor is one more event on the
 * broker's loop: no timer, no wake-up while nothing changes.
 */
#include <errno.h>
#include <libgen.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "internal.h"
#include "roost/alloc.h"

#define WATCH_MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM)

typedef struct watched {
	int wd;     /* of the directory */
	char *name; /* the file's name inside it */
} watched;

struct auth_watch {
	roost_broker *b;
	int fd;
	struct event *ev;
	watched *files;
	size_t n;
	void (*changed)(roost_broker *b);
};

static bool matches(const auth_watch *w, const struct inotify_event *e)
{
	if (e->mask & IN_Q_OVERFLOW)
		return true; /* events were lost: assume ours was among them */
	for (size_t i = 0; i < w->n; i++)
		if (w->files[i].wd == e->wd && e->len && strcmp(w->files[i].name, e->name) == 0)
			return true;
	return false;
}

static void on_inotify(evutil_socket_t fd, short what, void *arg)
{
	(void)what;
	auth_watch *w = arg;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool changed = false;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n <= 0)
			break; /* EAGAIN: drained */
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *e = (const struct inotify_event *)p;
			changed |= matches(w, e);
			p += sizeof *e + e->len;
		}
	}
	if (changed)
		w->changed(w->b);
}

/* Watch path's directory for path; false (logged) when it cannot be. */
static bool add_file(auth_watch *w, const char *path)
{
	char *d = roost_strdup(path), *f = roost_strdup(path);
	char *name = f ? roost_strdup(basename(f)) : NULL;
	int wd = d && name ? inotify_add_watch(w->fd, dirname(d), WATCH_MASK) : -1;
	if (wd < 0 && d && name)
		roost_log_warn(w->b->log, "auth: cannot watch %s for changes (%s); send SIGHUP after editing it",
		                  path, strerror(errno));
	roost_free(d);
	roost_free(f);
	if (wd < 0) {
		roost_free(name);
		return false;
	}
	watched *grown = roost_realloc(w->files, (w->n + 1) * sizeof *grown);
	if (!grown) {
		roost_free(name);
		return false;
	}
	w->files = grown;
	w->files[w->n++] = (watched){wd, name};
	return true;
}

auth_watch *broker_auth_watch_new(roost_broker *b, const char *const *paths, size_t n,
                                  void (*changed)(roost_broker *b))
{
	auth_watch *w = roost_calloc(1, sizeof *w);
	if (!w)
		return NULL;
	w->b = b;
	w->changed = changed;
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->fd < 0) {
		roost_log_warn(b->log, "auth: inotify unavailable (%s); password files are re-read on SIGHUP only",
		                  strerror(errno));
		goto fail;
	}
	for (size_t i = 0; i < n; i++)
		add_file(w, paths[i]);
	w->ev = event_new(b->base, w->fd, EV_READ | EV_PERSIST, on_inotify, w);
	if (!w->ev || event_add(w->ev, NULL) != 0)
		goto fail;
	return w;
fail:
	broker_auth_watch_free(w);
	return NULL;
}

void broker_auth_watch_free(auth_watch *w)
{
	if (!w)
		return;
	if (w->ev)
		event_free(w->ev);
	if (w->fd >= 0)
		close(w->fd);
	for (size_t i = 0; i < w->n; i++)
		roost_free(w->files[i].name);
	roost_free(w->files);
	roost_free(w);
}
