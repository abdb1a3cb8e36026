/* s3_checksum.h - S3's flexible checksums on the request side: what a request claims
 * (one x-amz-checksum-<alg> header, or the aws-chunked trailer x-amz-trailer announces,
 * with x-amz-sdk-checksum-algorithm agreeing), the check of that claim against the bytes
 * (BadDigest), the algorithm a write stores, and how checksums are answered (headers on
 * PUT, and on GET/HEAD with x-amz-checksum-mode: ENABLED; XML elements in the copy,
 * multipart and listing results). The values themselves are computed by the backend's
 * writer as the bytes stream (backend.h), or here for small bodies. */
#ifndef VIRGA_S3_CHECKSUM_H
#define VIRGA_S3_CHECKSUM_H

#include <libxml/tree.h>

#include "objectstore.h"
#include "xml.h"

/* At the start of every request, after authentication: parse and check the checksum
 * headers (InvalidRequest as S3 words it); trailer is the algorithm x-amz-trailer
 * announced (CK_NONE if none). Sets r->ck. */
int s3_checksum_begin(s3_req_t *r, ck_alg_t trailer, verr_t *e);
/* Decoded body bytes (small bodies are checked here). */
void s3_checksum_data(s3_req_t *r, const char *d, size_t n);
/* At the end of the body: the trailer's value (NULL if none came), then the check of a
 * small body. */
int s3_checksum_trailer(s3_req_t *r, const char *value, verr_t *e);
int s3_checksum_finish_small(s3_req_t *r, verr_t *e);
void s3_checksum_free(void *ck);

/* PutObject, UploadPart: tell the writer what to compute (InvalidRequest for a part whose
 * algorithm is not the one its upload chose); at the end, the claim against what it
 * computed (BadDigest); then the answer's headers: the stored checksum, or for a part
 * the one the client sent. */
int s3_checksum_put_begin(s3_req_t *r, os_put_t *p, verr_t *e);
int s3_checksum_put_verify(s3_req_t *r, os_put_t *p, verr_t *e);
void s3_checksum_put_headers(const s3_req_t *r, const os_checksum_t *stored, http_resp_t *resp);
/* GetObject/HeadObject: the stored checksum when the request asks for it
 * (x-amz-checksum-mode: ENABLED) and the answer is the whole object. */
void s3_checksum_get_headers(const s3_req_t *r, const os_meta_t *m, int ranged, http_resp_t *resp);

/* CopyObject: the algorithm the copy stores (x-amz-checksum-algorithm, else the source's,
 * else the default); CK_NONE and e set if the header is not an algorithm. */
ck_alg_t s3_checksum_copy_alg(const s3_req_t *r, const os_meta_t *src, verr_t *e);
/* CreateMultipartUpload: x-amz-checksum-algorithm / x-amz-checksum-type into ck; the
 * answer's headers. */
int s3_checksum_create(const s3_req_t *r, os_checksum_t *ck, verr_t *e);
void s3_checksum_create_headers(const os_checksum_t *ck, http_resp_t *resp);
/* CompleteMultipartUpload: a <Part>'s Checksum* element into ref->ck (InvalidArgument if
 * malformed or several), and the whole-object checksum the request states. */
int s3_checksum_part_xml(xmlNodePtr part, os_checksum_t *ck, verr_t *e);
void s3_checksum_complete_want(const s3_req_t *r, os_checksum_t *want);

/* <ChecksumCRC32>...</ChecksumCRC32>[<ChecksumType>...</ChecksumType>] when there is one. */
void s3_checksum_xml(xml_t *x, const os_checksum_t *ck, int with_type);
const char *s3_checksum_type(const os_checksum_t *ck);   /* "FULL_OBJECT" / "COMPOSITE" */

#endif
