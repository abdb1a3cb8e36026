/* transfer.h - moving whole files to and from HTTP URLs (libcurl), hashing the bytes
 * (SHA-256) as they pass. The one HTTP client for bulk bytes: the image service's
 * import/copy pipeline and the agent's image cache both use it with object store grant
 * (presigned) URLs. Every transfer is bounded: a total timeout and a low-speed limit
 * (a stalled peer fails the transfer instead of holding a thread forever), a progress
 * callback that may abort it and, for a GET, optionally a largest body.
 *
 * Only http:// and https:// URLs are used, redirects are never followed and bodies are
 * never content-decoded (the checksum is of the bytes as sent). Messages never contain
 * the URL's query string, where a presigned URL carries its credentials.
 *
 * Errors (verr code, http_status):
 *   TransferFailed  the exchange failed. http_status is the server's status when it
 *                   answered another than 200 (a GET) or 2xx (a PUT) - a 3xx included,
 *                   since redirects are not followed - and the message names it with the
 *                   S3 error the body carried: "download: HTTP 404 NoSuchKey: <message>".
 *                   502 for network errors, timeouts, a too slow peer, a refused scheme.
 *   TooLarge (502)  GET with max_bytes: the body is longer. Refused as soon as known:
 *                   from Content-Length before any body byte is written, else when the
 *                   bytes pass max_bytes.
 *   Canceled (499)  the progress callback returned non-zero.
 *   InternalError (500)  the local file could not be read or written (e.g. disk full).
 * What a failed GET already wrote to fd is the caller's to discard. */
#ifndef VIRGA_TRANSFER_H
#define VIRGA_TRANSFER_H

#include <stdint.h>

#include "err.h"

/* Called often while bytes flow and at least once a second while none do (so a cancel
 * flag it checks is seen within a second); non-zero aborts the transfer (Canceled). */
typedef int (*transfer_progress_fn)(void *arg, uint64_t done, uint64_t total);

typedef struct transfer_opts {
    long timeout_s;               /* whole transfer, connecting included; 0 = 3600 */
    long low_speed_s;             /* abort below low_speed_bytes/s for this long; 0 = 60 */
    transfer_progress_fn progress;
    void *arg;
    uint64_t max_bytes;           /* GET only: a longer body is TooLarge; 0 = no bound */
    long low_speed_bytes;         /* 0 = 1024 */
    long connect_timeout_s;       /* connecting alone; 0 = 10 (never above timeout_s) */
    const char *what;             /* names the transfer at the start of messages, e.g.
                                     "GET http://host/key"; NULL = "download"/"upload".
                                     Must not hold a query string: see transfer_url_for_log */
    /* Multipart uploads: called with the upload id as soon as the upload exists, before
     * any part is sent, so the caller can record it and abort it later should this
     * process die before it completes or aborts it itself. Non-zero aborts the upload
     * and fails the transfer (Canceled). */
    int (*upload_started)(void *arg, const char *upload_id);
} transfer_opts_t;

/* GET url into fd (from its current offset). *size and sha256_hex (may be NULL) describe
 * the bytes received. Any status other than 200 fails (TransferFailed, above). */
int transfer_get(const char *url, int fd, const transfer_opts_t *o, uint64_t *size, char sha256_hex[65], verr_t *e);

/* PUT the size bytes of fd (from offset 0) to url, with Content-MD5 so the receiver can
 * check them. sha256_hex (may be NULL) gets their SHA-256, etag (may be NULL, 80 bytes)
 * the ETag the server answered, without quotes. */
int transfer_put(const char *url, int fd, uint64_t size, const transfer_opts_t *o, char sha256_hex[65],
                 char etag[80], verr_t *e);

/* The same as a multipart upload (CreateMultipartUpload, UploadPart of part_bytes each with
 * its Content-MD5, CompleteMultipartUpload; AbortMultipartUpload if any step fails), for
 * objects larger than one PUT may be (5 GiB) or where a failed part should not cost the
 * whole transfer. url must carry its authorization in its query (a grant URL). part_bytes
 * below S3's 5 MiB minimum is raised to it; at most 10,000 parts. */
int transfer_put_multipart(const char *url, int fd, uint64_t size, uint64_t part_bytes, const transfer_opts_t *o,
                           char sha256_hex[65], char etag[80], verr_t *e);

/* DELETE url (2xx = done; S3 answers 204 also when there was nothing to delete). */
int transfer_delete(const char *url, const transfer_opts_t *o, verr_t *e);

/* AbortMultipartUpload of upload_id at url (a grant allowing it). An upload that no longer
 * exists (completed or aborted already: NoSuchUpload) counts as aborted. */
int transfer_abort_multipart(const char *url, const char *upload_id, const transfer_opts_t *o, verr_t *e);

/* The URL without its query string and fragment, for messages and logs. Caller frees. */
char *transfer_url_for_log(const char *url);

#endif
