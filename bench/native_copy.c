/*
 * A compiled copy loop for the recording benchmark (`bench/record.py --copy native`).
 *
 * One thread per RTSP URL: demux with libavformat, mux the video into a fragmented MP4 (the
 * recorder's movflags and 250 ms fragments) through a 1 MiB AVIO buffer whose write
 * callback takes the SHA-256 of every byte (OpenSSL) and writes the file. No session, no
 * segments, no index: the lowest CPU a recorder that hashes while writing could reach
 * with the same FFmpeg as the `ffmpeg` command line it is compared with.
 *
 * Speaks the benchmark's mark protocol on stdin/stdout: {"ready": true} once every stream
 * has muxed a frame; each "mark" line is answered with the time and the frames muxed; any
 * other line or the end of input stops the threads, which close their files.
 *
 *   native_copy [-n] [-F] OUT_DIR URL...
 *
 * -n: no SHA-256 (the write callback only writes). -F: as the `ffmpeg` command line's
 * segment muxer writes: an unfragmented MP4 through FFmpeg's own file writer, no hash.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libavformat/avformat.h>
#include <libavutil/opt.h>
#include <openssl/evp.h>

#define WRITE_BUFFER (1 << 20)

#if LIBAVFORMAT_VERSION_MAJOR >= 61 /* the write callback's buffer became const */
#define WRITE_CONST const
#else
#define WRITE_CONST
#endif

typedef struct {
    const char *url;
    char path[4096];
    int fd;
    EVP_MD_CTX *sha;
    atomic_long frames;
    atomic_int failed;
} Stream;

static atomic_int stopping;
static int hashing = 1, fragmenting = 1;

static int write_hashed(void *opaque, WRITE_CONST uint8_t *buf, int size)
{
    Stream *s = opaque;
    if (hashing)
        EVP_DigestUpdate(s->sha, buf, (size_t)size);
    for (int done = 0; done < size;) {
        ssize_t n = write(s->fd, buf + done, (size_t)(size - done));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return AVERROR(errno);
        }
        done += (int)n;
    }
    return size;
}

static int copy(Stream *s)
{
    AVFormatContext *in = NULL, *out = NULL;
    AVDictionary *opts = NULL;
    AVPacket *pkt = av_packet_alloc();
    int ret, video = -1, started = 0;

    av_dict_set(&opts, "rtsp_transport", "tcp", 0);
    av_dict_set(&opts, "timeout", "5000000", 0);
    ret = avformat_open_input(&in, s->url, NULL, &opts);
    av_dict_free(&opts);
    if (ret < 0 || (ret = avformat_find_stream_info(in, NULL)) < 0)
        goto end;
    video = av_find_best_stream(in, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    if (video < 0) {
        ret = video;
        goto end;
    }
    AVStream *src = in->streams[video];

    if ((ret = avformat_alloc_output_context2(&out, NULL, "mp4", NULL)) < 0)
        goto end;
    if (!fragmenting) {
        if ((ret = avio_open(&out->pb, s->path, AVIO_FLAG_WRITE)) < 0)
            goto end;
    } else {
        s->fd = open(s->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (s->fd < 0) {
            ret = AVERROR(errno);
            goto end;
        }
        unsigned char *buffer = av_malloc(WRITE_BUFFER);
        out->pb = avio_alloc_context(buffer, WRITE_BUFFER, 1, s, NULL, write_hashed, NULL);
    }
    AVStream *dst = avformat_new_stream(out, NULL);
    if ((ret = avcodec_parameters_copy(dst->codecpar, src->codecpar)) < 0)
        goto end;
    dst->codecpar->codec_tag = MKTAG('a', 'v', 'c', '1');
    dst->time_base = src->time_base;
    if (fragmenting) {
        av_dict_set(&opts, "movflags", "frag_keyframe+empty_moov+default_base_moof", 0);
        av_dict_set(&opts, "frag_duration", "250000", 0);
        av_dict_set(&opts, "flush_packets", "1", 0);
    }
    ret = avformat_write_header(out, &opts);
    av_dict_free(&opts);
    if (ret < 0)
        goto end;

    while (!atomic_load_explicit(&stopping, memory_order_relaxed)) {
        if ((ret = av_read_frame(in, pkt)) < 0)
            break;
        if (pkt->stream_index != video || !pkt->size ||
            !(started || (pkt->flags & AV_PKT_FLAG_KEY))) {
            av_packet_unref(pkt);
            continue;
        }
        started = 1;
        pkt->stream_index = 0;
        av_packet_rescale_ts(pkt, src->time_base, dst->time_base);
        if ((ret = av_write_frame(out, pkt)) < 0)
            break;
        atomic_fetch_add_explicit(&s->frames, 1, memory_order_relaxed);
    }
    if (atomic_load(&stopping))
        ret = 0;
    av_write_trailer(out);
    avio_flush(out->pb);

end:
    if (out && !fragmenting) {
        avio_closep(&out->pb);
        avformat_free_context(out);
    } else if (out) {
        if (out->pb)
            av_freep(&out->pb->buffer);
        avio_context_free(&out->pb);
        avformat_free_context(out);
    }
    if (s->fd >= 0)
        close(s->fd);
    avformat_close_input(&in);
    av_packet_free(&pkt);
    return ret;
}

static void *run(void *arg)
{
    Stream *s = arg;
    int ret = copy(s);
    if (ret < 0) {
        char why[256];
        av_strerror(ret, why, sizeof why);
        fprintf(stderr, "%s: %s\n", s->url, why);
        atomic_store(&s->failed, 1);
    }
    return NULL;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static long frames(Stream *streams, int n, int *all)
{
    long total = 0;
    *all = 1;
    for (int i = 0; i < n; i++) {
        long f = atomic_load(&streams[i].frames);
        total += f;
        if (!f)
            *all = 0;
    }
    return total;
}

int main(int argc, char **argv)
{
    int opt;
    while ((opt = getopt(argc, argv, "nF")) != -1) {
        if (opt == 'n')
            hashing = 0;
        else if (opt == 'F')
            hashing = fragmenting = 0;
        else
            return 2;
    }
    argc -= optind - 1;
    argv += optind - 1;
    if (argc < 3) {
        fprintf(stderr, "usage: native_copy [-n] [-F] OUT_DIR URL...\n");
        return 2;
    }
    int n = argc - 2, all;
    Stream *streams = calloc((size_t)n, sizeof *streams);
    pthread_t *threads = calloc((size_t)n, sizeof *threads);
    av_log_set_level(AV_LOG_ERROR);
    avformat_network_init();
    for (int i = 0; i < n; i++) {
        streams[i].url = argv[i + 2];
        streams[i].fd = -1;
        streams[i].sha = EVP_MD_CTX_new();
        EVP_DigestInit_ex(streams[i].sha, EVP_sha256(), NULL);
        snprintf(streams[i].path, sizeof streams[i].path, "%s/cam%02d.mp4", argv[1], i);
        pthread_create(&threads[i], NULL, run, &streams[i]);
    }
    for (double deadline = now() + 90;; usleep(200000)) {
        frames(streams, n, &all);
        if (all)
            break;
        if (now() > deadline) {
            printf("{\"error\": \"streams did not come online\"}\n");
            fflush(stdout);
            return 1;
        }
    }
    printf("{\"ready\": true}\n");
    fflush(stdout);
    char line[64];
    while (fgets(line, sizeof line, stdin) && strcmp(line, "mark\n") == 0) {
        long total = frames(streams, n, &all);
        printf("{\"at\": %.6f, \"frames\": %ld, \"sealing_cpu_s\": 0.0, \"segments_sealed\": 0}\n",
               now(), total);
        fflush(stdout);
    }
    atomic_store(&stopping, 1);
    int failed = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(threads[i], NULL);
        unsigned char digest[EVP_MAX_MD_SIZE];
        unsigned int size;
        EVP_DigestFinal_ex(streams[i].sha, digest, &size);
        EVP_MD_CTX_free(streams[i].sha);
        failed += atomic_load(&streams[i].failed);
    }
    printf("{\"final\": {\"dropped\": 0, \"repaired\": 0, \"reconnects\": 0, "
           "\"bytes_received\": 0, \"failed_streams\": %d}}\n", failed);
    fflush(stdout);
    return failed ? 1 : 0;
}
