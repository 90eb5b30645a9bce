/*
 * log.c - encoding, verification and reading of change records (log.h).
 * Appending is the writer's job (writer.c), which is the only thread that
 * writes. Reading works in any transaction, on any thread.
 */
#include "sv_autoconf.h"

#include "wal/log.h"

#include <string.h>

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
}

uint32_t sv_crc32c(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&crc_once, crc_init);
    const uint8_t *p = data;
    crc = ~crc;
    while (len >= 8) { /* slice-by-8 */
        uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
        crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^ crc_table[5][(lo >> 16) & 0xff] ^
              crc_table[4][lo >> 24] ^ crc_table[3][p[4]] ^ crc_table[2][p[5]] ^ crc_table[1][p[6]] ^
              crc_table[0][p[7]];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
    return ~crc;
}

void sv_wal_encode_body(sv_recw_t *w, const sv_wal_record_t *rec)
{
    sv_recw_reset(w, SV_WAL_FORMAT);
    sv_recw_u8(w, rec->op);
    sv_recw_u8(w, (uint8_t)(rec->db >> 8));
    sv_recw_u8(w, (uint8_t)rec->db);
    sv_recw_u8(w, rec->flags); /* at SV_WAL_FLAGS_OFFSET */
    sv_recw_u64(w, rec->unit_id);
    sv_recw_i64(w, rec->time_us);
    sv_recw_bytes(w, rec->key.base, rec->key.len);
    sv_recw_bytes(w, rec->value.base, rec->value.len);
}

void sv_wal_seal(sv_recw_t *w, uint64_t lsn)
{
    if (w->failed)
        return;
    uint8_t lsn_be[8];
    sv_put_be64(lsn_be, lsn);
    uint32_t crc = sv_crc32c(sv_crc32c(0, lsn_be, 8), w->buf, w->len);
    sv_recw_u32(w, crc);
}

void sv_wal_encode(sv_recw_t *w, const sv_wal_record_t *rec)
{
    sv_recw_init(w, SV_WAL_FORMAT);
    sv_wal_encode_body(w, rec);
    sv_wal_seal(w, rec->lsn);
}

sv_err_t sv_wal_decode(sv_bytes_t raw, uint64_t lsn, sv_wal_record_t *out)
{
    if (raw.len < 4)
        return SV_ECORRUPT;
    uint8_t lsn_be[8];
    sv_put_be64(lsn_be, lsn);
    uint32_t want = sv_get_be32(raw.base + raw.len - 4);
    if (sv_crc32c(sv_crc32c(0, lsn_be, 8), raw.base, raw.len - 4) != want)
        return SV_ECORRUPT;
    sv_recr_t r;
    if (sv_recr_init(&r, (sv_bytes_t){raw.base, raw.len - 4}) != SV_WAL_FORMAT)
        return SV_ECORRUPT;
    out->lsn = lsn;
    out->op = sv_recr_u8(&r);
    out->db = (uint16_t)(sv_recr_u8(&r) << 8);
    out->db |= sv_recr_u8(&r);
    out->flags = sv_recr_u8(&r);
    out->unit_id = sv_recr_u64(&r);
    out->time_us = sv_recr_i64(&r);
    out->key = sv_recr_bytes(&r);
    out->value = sv_recr_bytes(&r);
    if (sv_recr_result(&r) != SV_OK || sv_recr_left(&r) != 0)
        return SV_ECORRUPT;
    if ((out->op != SV_WAL_PUT && out->op != SV_WAL_DEL) || out->db >= SV_DB_COUNT_)
        return SV_ECORRUPT;
    return SV_OK;
}

static sv_err_t edge_lsn(sv_txn_t *tx, bool last, uint64_t *lsn)
{
    sv_iter_t it;
    sv_bytes_t k;
    *lsn = 0;
    sv_err_t err = sv_iter_open(tx, SV_DB_WAL, (sv_bytes_t){NULL, 0}, (sv_bytes_t){NULL, 0}, last, &it);
    if (err == SV_ENOTFOUND)
        return SV_OK;
    if (err != SV_OK)
        return err;
    err = sv_iter_next(&it, &k, NULL);
    sv_iter_close(&it);
    if (err == SV_ENOTFOUND)
        return SV_OK;
    if (err != SV_OK)
        return err;
    if (k.len != 8)
        return SV_ECORRUPT;
    *lsn = sv_get_be64(k.base);
    return SV_OK;
}

sv_err_t sv_wal_last_lsn(sv_txn_t *tx, uint64_t *lsn)
{
    return edge_lsn(tx, true, lsn);
}

sv_err_t sv_wal_first_lsn(sv_txn_t *tx, uint64_t *lsn)
{
    return edge_lsn(tx, false, lsn);
}

sv_err_t sv_wal_applied_lsn(sv_txn_t *tx, uint64_t *lsn)
{
    sv_bytes_t v;
    *lsn = 0;
    sv_err_t err = sv_txn_get(tx, SV_DB_META, SV_BYTES_STR(SV_META_APPLIED_LSN), &v);
    if (err == SV_ENOTFOUND)
        return SV_OK;
    if (err != SV_OK)
        return err;
    if (v.len != 9 || v.base[0] != SV_WAL_APPLIED_FORMAT)
        return SV_ECORRUPT;
    *lsn = sv_get_be64(v.base + 1);
    return SV_OK;
}

sv_err_t sv_wal_iter_open(sv_txn_t *tx, uint64_t from_lsn, sv_wal_iter_t *wi)
{
    sv_put_be64(wi->seek, from_lsn);
    return sv_iter_open(tx, SV_DB_WAL, (sv_bytes_t){NULL, 0}, (sv_bytes_t){wi->seek, 8}, false, &wi->it);
}

sv_err_t sv_wal_iter_next(sv_wal_iter_t *wi, sv_wal_record_t *rec)
{
    sv_bytes_t k, v;
    sv_err_t err = sv_iter_next(&wi->it, &k, &v);
    if (err != SV_OK)
        return err;
    if (k.len != 8)
        return SV_ECORRUPT;
    return sv_wal_decode(v, sv_get_be64(k.base), rec);
}

void sv_wal_iter_close(sv_wal_iter_t *wi)
{
    sv_iter_close(&wi->it);
}

const char *sv_wal_op_name(uint8_t op)
{
    return op == SV_WAL_PUT ? "put" : op == SV_WAL_DEL ? "delete" : "?";
}
