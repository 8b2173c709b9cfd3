/*
 * auth_worker.c — password verification off the event loop.
 *
 * A PBKDF2 check costs 15 ms here and ~100 ms on a Raspberry Pi; forty
 * wrong-password CONNECTs on the loop froze every other client for 438 ms.
 * Checks run on a small pool of threads (1, or 2 where there are more than
 * two CPUs, so the loop keeps a core). A job carries a COPY of the
 * credential and of the password, never a pointer into the password db, so
 * a reload may free the db while a check runs. Results come back through an
 * eventfd that is one event on the loop; the done callbacks run there, in
 * order of completion. The threads touch nothing but their jobs and the two
 * queues under one mutex.
 */
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "internal.h"
#include "roost/alloc.h"

#define MAX_THREADS 2

typedef struct auth_job {
	struct auth_job *next;
	roost_auth_cred cred;
	char *password;
	size_t len;
	bool ok;
	auth_pool_done done;
	void *ctx;
} auth_job;

struct auth_pool {
	pthread_t threads[MAX_THREADS];
	int n_threads;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	auth_job *todo, **todo_tail; /* FIFO */
	auth_job *done, **done_tail;
	bool stop;
	int efd;
	struct event *ev;
};

static void job_free(auth_job *j)
{
	OPENSSL_cleanse(j->password, j->len);
	OPENSSL_cleanse(&j->cred, sizeof j->cred);
	roost_free(j->password);
	roost_free(j);
}

static void *worker(void *arg)
{
	auth_pool *p = arg;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->todo && !p->stop)
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->stop)
			break;
		auth_job *j = p->todo;
		if (!(p->todo = j->next))
			p->todo_tail = &p->todo;
		pthread_mutex_unlock(&p->mu);
		j->ok = roost_auth_cred_verify(&j->cred, j->password, j->len);
		pthread_mutex_lock(&p->mu);
		j->next = NULL;
		*p->done_tail = j;
		p->done_tail = &j->next;
		uint64_t one = 1;
		ssize_t w = write(p->efd, &one, sizeof one); /* wakes the loop */
		(void)w; /* the counter only overflows after 2^64 writes */
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* On the loop: hand every finished job to its callback. */
static void on_done(evutil_socket_t fd, short what, void *arg)
{
	(void)what;
	auth_pool *p = arg;
	uint64_t n;
	ssize_t r = read(fd, &n, sizeof n);
	(void)r; /* EAGAIN: another wake-up already drained it */
	pthread_mutex_lock(&p->mu);
	auth_job *list = p->done;
	p->done = NULL;
	p->done_tail = &p->done;
	pthread_mutex_unlock(&p->mu);
	while (list) {
		auth_job *j = list;
		list = j->next;
		j->done(j->ctx, j->ok);
		job_free(j);
	}
}

static void drop_all(auth_job *list)
{
	while (list) {
		auth_job *next = list->next;
		job_free(list);
		list = next;
	}
}

auth_pool *broker_auth_pool_new(struct event_base *base)
{
	auth_pool *p = roost_calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->todo_tail = &p->todo;
	p->done_tail = &p->done;
	p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->ev = p->efd >= 0 ? event_new(base, p->efd, EV_READ | EV_PERSIST, on_done, p) : NULL;
	if (!p->ev || event_add(p->ev, NULL) != 0)
		goto fail;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int want = cpus > 2 ? MAX_THREADS : 1;
	/* Signals stay with the loop thread (libevent's handlers). */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (; p->n_threads < want; p->n_threads++)
		if (pthread_create(&p->threads[p->n_threads], NULL, worker, p) != 0)
			break;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	for (int i = 0; i < p->n_threads; i++)
		pthread_setname_np(p->threads[i], "roost-auth");
	if (p->n_threads == 0)
		goto fail;
	return p;
fail:
	broker_auth_pool_free(p);
	return NULL;
}

roost_err broker_auth_pool_submit(auth_pool *p, const roost_auth_cred *cred, const void *password, size_t len,
                                  auth_pool_done done, void *ctx)
{
	auth_job *j = roost_calloc(1, sizeof *j);
	if (!j || (len && !(j->password = roost_malloc(len)))) {
		roost_free(j);
		return ROOST_ERR_NOMEM;
	}
	j->cred = *cred;
	if (len)
		memcpy(j->password, password, len);
	j->len = len;
	j->done = done;
	j->ctx = ctx;
	pthread_mutex_lock(&p->mu);
	*p->todo_tail = j;
	p->todo_tail = &j->next;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return ROOST_OK;
}

void broker_auth_pool_free(auth_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (int i = 0; i < p->n_threads; i++)
		pthread_join(p->threads[i], NULL);
	/* No callback runs any more: their owners free their contexts. */
	drop_all(p->todo);
	drop_all(p->done);
	if (p->ev)
		event_free(p->ev);
	if (p->efd >= 0)
		close(p->efd);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	roost_free(p);
}
