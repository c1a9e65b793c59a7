#!/usr/bin/env bash
# Fetch, verify and build Bramble's third-party libraries as static archives.
#
#   tools/deps/deps.sh fetch             download every file pinned in deps.lock
#   tools/deps/deps.sh build TARGET OUT  build all libraries for TARGET, write OUT (a make fragment)
#
# Environment: BRAMBLE_CACHE (see below), DEPS_LOCK (another pin file, for tests), JOBS.
#
# Sources come from Debian source packages through a private apt configuration that
# reuses the mirrors this machine already has configured (their `deb` entries become
# `deb-src` entries, plus the newer suites listed in SOURCE_SUITES). Nothing third-party is
# kept in the repository: tarballs and builds live in the cache, $BRAMBLE_CACHE
# (default /var/cache/bramble as root, ~/.cache/bramble otherwise).
#
# Each library is built into its own prefix, named after a hash of its pinned files, its
# recipe below and the target's compiler flags, so changing any of those rebuilds exactly
# that library and a clean clone on the same machine rebuilds nothing.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
lock=${DEPS_LOCK:-"$here/deps.lock"}
SOURCE_SUITES=${SOURCE_SUITES:-"trixie trixie-updates sid"}
if [ -z "${BRAMBLE_CACHE:-}" ]; then
	if [ "$(id -u)" = 0 ]; then BRAMBLE_CACHE=/var/cache/bramble; else BRAMBLE_CACHE="$HOME/.cache/bramble"; fi
fi
cache=$BRAMBLE_CACHE
jobs=${JOBS:-$(nproc)}

die() { echo "deps: $*" >&2; exit 1; }
say() { echo "deps: $*" >&2; }

# --- the pinned files -----------------------------------------------------------------
lock_lines() { grep -v '^\s*#' "$lock" | grep -v '^\s*$'; }
dep_names() { lock_lines | awk '!seen[$1]++ {print $1}'; }
dep_field() { lock_lines | awk -v n="$1" -v f="$2" '$1 == n {print $f; exit}'; }
dep_files() { lock_lines | awk -v n="$1" '$1 == n {print $5}'; }
dep_file_like() { dep_files "$1" | grep -E -- "$2" | head -n1 || true; }

# --- a private apt configuration ---------------------------------------------------------
apt_dir="$cache/apt"
apt_opts=(-o "Dir::Etc::sourcelist=/dev/null" -o "Dir::Etc::sourceparts=$apt_dir/sources.list.d"
	-o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
	-o "Dir::State::status=/var/lib/dpkg/status" -o "Debug::NoLocking=1"
	-o "APT::Sandbox::User=root")

# The first Debian archive URI the machine uses, read from its own apt configuration.
machine_debian_uri() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		awk '/^URIs:/ {u=$2} /^Suites:/ {for (i=2;i<=NF;i++) if ($i !~ /security/) s=1}
		     /^$/ {if (u && s) {print u; exit} u=""; s=0}
		     END {if (u && s) print u}' "$f" | head -n1
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		awk '$1 == "deb" && $0 !~ /security/ {for (i=2;i<=NF;i++) if ($i ~ /:\/\//) {print $i; exit}}' "$f"
	done
}

apt_setup() {
	mkdir -p "$apt_dir/sources.list.d" "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
	local uri
	uri=$(machine_debian_uri | head -n1)
	[ -n "$uri" ] || die "no Debian mirror found in /etc/apt; configure apt first"
	{
		echo "Types: deb-src"
		echo "URIs: $uri"
		echo "Suites: $SOURCE_SUITES"
		echo "Components: main"
		echo "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
	} > "$apt_dir/sources.list.d/bramble-src.sources.new"
	if ! cmp -s "$apt_dir/sources.list.d/bramble-src.sources.new" "$apt_dir/sources.list.d/bramble-src.sources"; then
		mv "$apt_dir/sources.list.d/bramble-src.sources.new" "$apt_dir/sources.list.d/bramble-src.sources"
		rm -f "$apt_dir/updated"
	else
		rm -f "$apt_dir/sources.list.d/bramble-src.sources.new"
	fi
	if [ ! -e "$apt_dir/updated" ]; then
		say "updating the private source index ($SOURCE_SUITES)"
		apt-get "${apt_opts[@]}" -qq update >&2 || die "apt-get update of the source index failed"
		touch "$apt_dir/updated"
	fi
}

sha_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

fetch() {
	mkdir -p "$cache/src"
	local name missing=() line
	for name in $(dep_names); do
		while read -r _ _ _ sum file; do
			sha_ok "$cache/src/$file" "$sum" || { missing+=("$name"); break; }
		done < <(lock_lines | awk -v n="$name" '$1 == n')
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	apt_setup
	local tmp
	tmp=$(mktemp -d "$cache/src/.fetch.XXXXXX")
	trap 'rm -rf "$tmp"' RETURN
	for name in $(printf '%s\n' "${missing[@]}" | sort -u); do
		local source version
		source=$(dep_field "$name" 2)
		version=$(dep_field "$name" 3)
		say "fetching $source $version"
		# apt-get fails as a whole when the mirror lacks any one file of the package
		# (often the .dsc); the files we pin are checked one by one below instead.
		(cd "$tmp" && apt-get "${apt_opts[@]}" -qq source --download-only "$source=$version" >/dev/null 2>&1) || true
		while read -r _ _ _ sum file; do
			[ -f "$tmp/$file" ] || die "$file ($source $version) is not on the mirror; pin another version in $lock"
			sha_ok "$tmp/$file" "$sum" ||
				die "$file: sha256 is $(sha256sum "$tmp/$file" | cut -d' ' -f1), $lock pins $sum; refusing to build it"
			mv "$tmp/$file" "$cache/src/$file"
		done < <(lock_lines | awk -v n="$name" '$1 == n')
	done
}

# Verify again right before use: the cache is outside the repository and could be altered.
verify() {
	local name=$1
	while read -r _ _ _ sum file; do
		sha_ok "$cache/src/$file" "$sum" || die "$cache/src/$file does not match its sha256 in $lock; run 'make deps' again"
	done < <(lock_lines | awk -v n="$name" '$1 == n')
}

# --- targets --------------------------------------------------------------------------
# Sets CC, AR, HOST (GNU triplet), CMAKE_PROCESSOR and ARCH_CFLAGS for a Bramble target.
target_setup() {
	case "$1" in
	x86_64) HOST=x86_64-linux-gnu; CMAKE_PROCESSOR=x86_64; ARCH_CFLAGS="" ;;
	arm64) HOST=aarch64-linux-gnu; CMAKE_PROCESSOR=aarch64; ARCH_CFLAGS="" ;;
	armhf) HOST=arm-linux-gnueabihf; CMAKE_PROCESSOR=armv7; ARCH_CFLAGS="" ;;
	armv6) HOST=arm-linux-gnueabi; CMAKE_PROCESSOR=armv6; ARCH_CFLAGS="-march=armv6 -marm -mfpu=vfp -mfloat-abi=softfp" ;;
	*) die "unknown target '$1' (x86_64, arm64, armhf, armv6)" ;;
	esac
	CC="$HOST-gcc"
	if [ "$1" = x86_64 ] && ! command -v "$CC" >/dev/null && [ "$(uname -m)" = x86_64 ]; then CC=gcc; fi
	command -v "$CC" >/dev/null || die "$CC not found; run 'tools/setup.sh' (as root it installs the cross-compilers)"
	AR="$HOST-ar"
	command -v "$AR" >/dev/null || AR=ar
	OBJCOPY="$HOST-objcopy"
	command -v "$OBJCOPY" >/dev/null || OBJCOPY=objcopy
	DEP_CFLAGS="-Os -ffunction-sections -fdata-sections -fPIE -g0 $ARCH_CFLAGS"
}

# --- recipes: one function per library, each installs into $prefix ---------------------
# Each runs in a fresh copy of the unpacked source with Debian's patches applied.

build_zlib() {
	CC="$CC" CFLAGS="$DEP_CFLAGS" CHOST="$HOST" ./configure --static --prefix="$prefix" >/dev/null
	make -j"$jobs" libz.a >/dev/null
	mkdir -p "$prefix/lib" "$prefix/include"
	cp libz.a "$prefix/lib/"
	cp zlib.h zconf.h "$prefix/include/"
}

# TLS is configured down to what Bramble uses: (D)TLS 1.2 client and server with PSK and
# ECDHE-ECDSA certificates (CoAP's mandatory AES-128-CCM-8 suites), X.509 for a cluster CA,
# AES-GCM and SHA-256 for secrets at rest. Everything else is switched off.
build_mbedtls() {
	local cfg=include/mbedtls/mbedtls_config.h unset
	for unset in MBEDTLS_SSL_PROTO_TLS1_3 MBEDTLS_SSL_TLS1_3_COMPATIBILITY_MODE \
		MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_EPHEMERAL_ENABLED \
		MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_PSK_ENABLED \
		MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_PSK_EPHEMERAL_ENABLED MBEDTLS_SSL_EARLY_DATA \
		MBEDTLS_PSA_CRYPTO_C MBEDTLS_PSA_CRYPTO_STORAGE_C MBEDTLS_PSA_ITS_FILE_C MBEDTLS_LMS_C \
		MBEDTLS_ARIA_C MBEDTLS_CAMELLIA_C MBEDTLS_DES_C MBEDTLS_CHACHA20_C MBEDTLS_POLY1305_C \
		MBEDTLS_CHACHAPOLY_C MBEDTLS_RIPEMD160_C MBEDTLS_MD5_C MBEDTLS_DHM_C MBEDTLS_PKCS12_C \
		MBEDTLS_PKCS5_C MBEDTLS_PKCS7_C MBEDTLS_NIST_KW_C MBEDTLS_CMAC_C MBEDTLS_SSL_TICKET_C \
		MBEDTLS_SSL_CACHE_C MBEDTLS_SSL_COOKIE_C_DISABLED MBEDTLS_NET_C MBEDTLS_VERSION_FEATURES \
		MBEDTLS_SELF_TEST MBEDTLS_PEM_WRITE_C MBEDTLS_X509_CRL_PARSE_C \
		MBEDTLS_X509_CSR_WRITE_C MBEDTLS_X509_CRT_WRITE_C MBEDTLS_X509_CREATE_C \
		MBEDTLS_X509_CSR_PARSE_C MBEDTLS_PK_WRITE_C MBEDTLS_RSA_C MBEDTLS_PKCS1_V15 \
		MBEDTLS_PKCS1_V21 MBEDTLS_GENPRIME MBEDTLS_KEY_EXCHANGE_RSA_ENABLED \
		MBEDTLS_KEY_EXCHANGE_DHE_RSA_ENABLED MBEDTLS_KEY_EXCHANGE_ECDHE_RSA_ENABLED \
		MBEDTLS_KEY_EXCHANGE_RSA_PSK_ENABLED MBEDTLS_KEY_EXCHANGE_DHE_PSK_ENABLED \
		MBEDTLS_KEY_EXCHANGE_ECDH_RSA_ENABLED MBEDTLS_KEY_EXCHANGE_ECDH_ECDSA_ENABLED \
		MBEDTLS_KEY_EXCHANGE_ECJPAKE_ENABLED MBEDTLS_ECJPAKE_C MBEDTLS_SSL_DTLS_SRTP \
		MBEDTLS_SSL_RENEGOTIATION MBEDTLS_SSL_CONTEXT_SERIALIZATION MBEDTLS_SSL_ALPN \
		MBEDTLS_ECP_DP_SECP192R1_ENABLED MBEDTLS_ECP_DP_SECP224R1_ENABLED \
		MBEDTLS_ECP_DP_SECP521R1_ENABLED MBEDTLS_ECP_DP_SECP192K1_ENABLED \
		MBEDTLS_ECP_DP_SECP224K1_ENABLED MBEDTLS_ECP_DP_SECP256K1_ENABLED \
		MBEDTLS_ECP_DP_BP256R1_ENABLED MBEDTLS_ECP_DP_BP384R1_ENABLED \
		MBEDTLS_ECP_DP_BP512R1_ENABLED MBEDTLS_ECP_DP_CURVE448_ENABLED MBEDTLS_SHA3_C \
		MBEDTLS_SHA1_C MBEDTLS_SHA512_C MBEDTLS_SHA384_C MBEDTLS_SSL_SESSION_TICKETS \
		MBEDTLS_FS_IO MBEDTLS_PK_PARSE_EC_COMPRESSED MBEDTLS_SSL_KEEP_PEER_CERTIFICATE \
		MBEDTLS_X509_RSASSA_PSS_SUPPORT; do
		python3 scripts/config.py -f "$cfg" unset "$unset"
	done
	python3 scripts/config.py -f "$cfg" set MBEDTLS_SSL_DTLS_CONNECTION_ID
	# mbedTLS 3.6 asks for TLS 1.3 pieces only when TLS 1.3 is on; check the result compiles.
	make -C library -j"$jobs" CC="$CC" AR="$AR" CFLAGS="$DEP_CFLAGS -I../include" \
		libmbedcrypto.a libmbedx509.a libmbedtls.a >/dev/null
	mkdir -p "$prefix/lib"
	cp library/libmbed{crypto,x509,tls}.a "$prefix/lib/"
	cp -r include "$prefix/"
}

build_libcoap() {
	local mbed="${prefixes[mbedtls]}"
	mkdir -p _build && cd _build
	cmake .. -DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR="$CMAKE_PROCESSOR" \
		-DCMAKE_C_COMPILER="$(command -v "$CC")" -DCMAKE_AR="$(command -v "$AR")" \
		-DCMAKE_C_FLAGS="$DEP_CFLAGS" -DCMAKE_BUILD_TYPE=MinSizeRel \
		-DCMAKE_INSTALL_PREFIX="$prefix" -DCMAKE_INSTALL_LIBDIR=lib \
		-DBUILD_SHARED_LIBS=OFF -DENABLE_DTLS=ON -DDTLS_BACKEND=mbedtls \
		-DMBEDTLS_INCLUDE_DIRS="$mbed/include" -DMBEDTLS_LIBRARY="$mbed/lib/libmbedtls.a" \
		-DMBEDX509_LIBRARY="$mbed/lib/libmbedx509.a" -DMBEDCRYPTO_LIBRARY="$mbed/lib/libmbedcrypto.a" \
		-DENABLE_CLIENT_MODE=ON -DENABLE_SERVER_MODE=ON -DENABLE_TCP=OFF -DENABLE_WS=OFF \
		-DENABLE_OSCORE=OFF -DENABLE_PROXY_CODE=OFF -DENABLE_AF_UNIX=OFF -DENABLE_Q_BLOCK=OFF \
		-DWITH_OBSERVE_PERSIST=OFF -DWITH_EPOLL=ON -DENABLE_ASYNC=ON -DENABLE_THREAD_SAFE=OFF \
		-DENABLE_TESTS=OFF -DENABLE_EXAMPLES=OFF -DENABLE_DOCS=OFF -DMAX_LOGGING_LEVEL=6 -Wno-dev >/dev/null
	make -j"$jobs" >/dev/null
	make install >/dev/null
	grep -q 'define COAP_WITH_LIBMBEDTLS 1' "$prefix/include/coap3/coap_defines.h" 2>/dev/null ||
		grep -rq 'COAP_WITH_LIBMBEDTLS 1' "$prefix/include/coap3/" ||
		die "libcoap was configured without its mbedTLS backend"
}

# SQLite's canonical source is turned into the amalgamation on the build machine (it needs
# tclsh), then the one file is compiled for the target. Features the store does not use are
# left out of the grammar itself (the OMIT options must be given when the amalgamation is
# generated): about 200 KB less code per target.
SQLITE_OMIT="-DSQLITE_OMIT_WINDOWFUNC -DSQLITE_OMIT_TRIGGER -DSQLITE_OMIT_VIEW -DSQLITE_OMIT_VIRTUALTABLE
	-DSQLITE_OMIT_ANALYZE -DSQLITE_OMIT_AUTOVACUUM -DSQLITE_OMIT_CTE
	-DSQLITE_OMIT_EXPLAIN -DSQLITE_OMIT_FOREIGN_KEY -DSQLITE_OMIT_UTF16 -DSQLITE_OMIT_INCRBLOB
	-DSQLITE_OMIT_JSON -DSQLITE_OMIT_REINDEX -DSQLITE_OMIT_DATETIME_FUNCS -DSQLITE_OMIT_LOCALTIME
	-DSQLITE_OMIT_TRACE -DSQLITE_OMIT_COMPOUND_SELECT -DSQLITE_OMIT_AUTOINCREMENT -DSQLITE_OMIT_CAST
	-DSQLITE_OMIT_CHECK -DSQLITE_OMIT_BLOB_LITERAL -DSQLITE_OMIT_INTROSPECTION_PRAGMAS
	-DSQLITE_OMIT_GENERATED_COLUMNS -DSQLITE_OMIT_LOAD_EXTENSION -DSQLITE_OMIT_DEPRECATED
	-DSQLITE_OMIT_SHARED_CACHE -DSQLITE_OMIT_PROGRESS_CALLBACK -DSQLITE_OMIT_DECLTYPE
	-DSQLITE_OMIT_TCL_VARIABLE -DSQLITE_OMIT_AUTHORIZATION -DSQLITE_OMIT_COMPLETE -DSQLITE_OMIT_GET_TABLE"
build_sqlite() {
	local omit
	omit=$(echo $SQLITE_OMIT)
	mkdir -p _host && (cd _host && ../configure >/dev/null && make sqlite3.c OPTS="$omit" >/dev/null)
	mkdir -p "$prefix/lib" "$prefix/include"
	$CC $DEP_CFLAGS $omit -c _host/sqlite3.c -o sqlite3.o \
		-DSQLITE_THREADSAFE=0 -DSQLITE_DEFAULT_MEMSTATUS=0 -DSQLITE_DQS=0 \
		-DSQLITE_LIKE_DOESNT_MATCH_BLOBS -DSQLITE_MAX_EXPR_DEPTH=0 -DSQLITE_USE_ALLOCA \
		-DSQLITE_DEFAULT_WAL_SYNCHRONOUS=1 -DSQLITE_DEFAULT_FOREIGN_KEYS=1
	$AR rcs "$prefix/lib/libsqlite3.a" sqlite3.o
	cp _host/sqlite3.h "$prefix/include/"
}

build_libcgroup() {
	./configure --host="$HOST" --prefix="$prefix" CC="$CC" CFLAGS="$DEP_CFLAGS" \
		--disable-shared --enable-static --disable-daemon --disable-pam --disable-tools \
		--disable-systemd --disable-tests --disable-samples --disable-python >/dev/null
	make -C src -j"$jobs" libcgroup.la >/dev/null
	mkdir -p "$prefix/lib" "$prefix/include"
	cp src/.libs/libcgroup.a "$prefix/lib/"
	# libcgroup and libseccomp both export a global named `library_version`.
	"$OBJCOPY" --redefine-sym library_version=libcgroup_library_version "$prefix/lib/libcgroup.a"
	cp -r include/libcgroup include/libcgroup.h "$prefix/include/"
}

build_cjson() {
	mkdir -p "$prefix/lib" "$prefix/include/cjson"
	$CC $DEP_CFLAGS -c cJSON.c -o cJSON.o
	$AR rcs "$prefix/lib/libcjson.a" cJSON.o
	cp cJSON.h "$prefix/include/cjson/"
}

build_libyaml() {
	mkdir -p "$prefix/lib" "$prefix/include"
	local f objs=()
	for f in src/*.c; do
		$CC $DEP_CFLAGS -Iinclude -Isrc -DYAML_VERSION_MAJOR=0 -DYAML_VERSION_MINOR=2 \
			-DYAML_VERSION_PATCH=5 -DYAML_VERSION_STRING='"0.2.5"' -c "$f" -o "${f%.c}.o"
		objs+=("${f%.c}.o")
	done
	$AR rcs "$prefix/lib/libyaml.a" "${objs[@]}"
	cp include/yaml.h "$prefix/include/"
}

# inih with line numbers handed to the callback (for `file:line: message` config errors)
# and lines up to 512 bytes read without heap allocation.
build_inih() {
	mkdir -p "$prefix/lib" "$prefix/include"
	$CC $DEP_CFLAGS -DINI_HANDLER_LINENO=1 -DINI_MAX_LINE=512 -DINI_STOP_ON_FIRST_ERROR=0 \
		-DINI_ALLOW_INLINE_COMMENTS=1 -c ini.c -o ini.o
	$AR rcs "$prefix/lib/libinih.a" ini.o
	cp ini.h "$prefix/include/"
}

build_libarchive() {
	local z="${prefixes[zlib]}"
	./configure --host="$HOST" --prefix="$prefix" CC="$CC" CFLAGS="$DEP_CFLAGS" \
		CPPFLAGS="-I$z/include" LDFLAGS="-L$z/lib" \
		--disable-shared --enable-static --disable-bsdtar --disable-bsdcpio --disable-bsdcat \
		--disable-bsdunzip --disable-acl --disable-xattr --with-zlib \
		--without-bz2lib --without-libb2 --without-iconv --without-lz4 --without-zstd \
		--without-lzma --without-lzo2 --without-cng --without-mbedtls --without-nettle \
		--without-openssl --without-xml2 --without-expat >/dev/null
	make -j"$jobs" libarchive.la >/dev/null
	mkdir -p "$prefix/lib" "$prefix/include"
	cp .libs/libarchive.a "$prefix/lib/"
	cp libarchive/archive.h libarchive/archive_entry.h "$prefix/include/"
}

build_libseccomp() {
	./configure --host="$HOST" --prefix="$prefix" CC="$CC" CFLAGS="$DEP_CFLAGS" \
		--disable-shared --enable-static --disable-python >/dev/null
	make -C src -j"$jobs" libseccomp.la >/dev/null
	mkdir -p "$prefix/lib" "$prefix/include"
	cp src/.libs/libseccomp.a "$prefix/lib/"
	cp include/seccomp.h include/seccomp-syscalls.h "$prefix/include/"
}

# --- building ------------------------------------------------------------------------
unpack() {
	local name=$1 dir=$2 orig debian
	orig=$(dep_file_like "$name" '\.orig\.tar\.')
	debian=$(dep_file_like "$name" '\.debian\.tar\.')
	rm -rf "$dir" && mkdir -p "$dir"
	tar -xf "$cache/src/$orig" -C "$dir" --strip-components=1
	if [ -n "$debian" ]; then
		tar -xf "$cache/src/$debian" -C "$dir"
		if [ -f "$dir/debian/patches/series" ]; then
			local p
			while read -r p _; do
				case "$p" in '' | \#*) continue ;; esac
				[ -f "$dir/debian/patches/$p" ] || continue
				# Debian's packaging-only patches (shared-library linking and the like) may
				# not apply to a static build; every security fix must.
				if ! patch -d "$dir" -p1 -s -N --dry-run < "$dir/debian/patches/$p" >/dev/null 2>&1; then
					case "$p" in *CVE* | *cve* | *fix* | *OOB*) die "$name: Debian patch $p does not apply" ;; esac
					say "$name: skipping Debian packaging patch $p"
					continue
				fi
				patch -d "$dir" -p1 -s -N < "$dir/debian/patches/$p" >/dev/null
			done < "$dir/debian/patches/series"
		fi
	fi
}

# The build order: a library comes after what it links against.
BUILD_ORDER="zlib mbedtls libcoap sqlite libcgroup cjson libyaml inih libarchive libseccomp"
dep_requires() {
	case "$1" in
	libcoap) echo mbedtls ;;
	libarchive) echo zlib ;;
	esac
}

build() {
	local target=$1 out=$2
	target_setup "$target"
	fetch
	declare -gA prefixes=()
	local name key prefix_base
	prefix_base="$cache/deps/$target"
	mkdir -p "$prefix_base"
	# One build per target at a time: two makes of one checkout, or two checkouts, share
	# the cache's work directories.
	exec 9>"$cache/deps/$target.lock"
	flock 9
	for name in $BUILD_ORDER; do
		key=$( {
			lock_lines | awk -v n="$name" '$1 == n'
			declare -f "build_$name" unpack
			[ "$name" = sqlite ] && echo "$SQLITE_OMIT"
			echo "$CC $($CC -dumpfullversion) $DEP_CFLAGS"
			for dep in $(dep_requires "$name"); do echo "$dep ${prefixes[$dep]}"; done
		} | sha256sum | cut -c1-12)
		prefix="$prefix_base/$name-$(dep_field "$name" 3 | tr ':~+' '___')-$key"
		prefixes[$name]=$prefix
		[ -f "$prefix/.built" ] && continue
		verify "$name"
		say "building $name $(dep_field "$name" 3) for $target"
		local work="$cache/work/$target/$name"
		unpack "$name" "$work"
		rm -rf "$prefix"
		# Not `|| die`: bash ignores `set -e` inside a command whose status is tested.
		set +e
		(set -e; cd "$work" && "build_$name")
		local rc=$?
		set -e
		[ $rc -eq 0 ] || die "building $name for $target failed (work tree kept in $work)"
		touch "$prefix/.built"
		rm -rf "$work"
	done
	# Prefixes of earlier pins or recipes are no longer used.
	local dir keep
	for dir in "$prefix_base"/*; do
		keep=0
		for name in $BUILD_ORDER; do [ "$dir" = "${prefixes[$name]}" ] && keep=1; done
		[ $keep = 1 ] || rm -rf "$dir"
	done
	# The make fragment: include and library paths, in link order.
	local tmp="$out.tmp" inc="" libdirs=""
	for name in $BUILD_ORDER; do
		inc+=" -isystem ${prefixes[$name]}/include"
		libdirs+=" -L${prefixes[$name]}/lib"
	done
	mkdir -p "$(dirname "$out")"
	{
		echo "# Written by tools/deps/deps.sh for $target; do not edit."
		echo "DEPS_CFLAGS :=$inc"
		echo "DEPS_LDFLAGS :=$libdirs"
		echo "DEPS_LIBS := -lcoap-3 -lmbedtls -lmbedx509 -lmbedcrypto -lsqlite3 -lcgroup -larchive -lz -lseccomp -lyaml -lcjson -linih"
	} > "$tmp"
	mv "$tmp" "$out"
}

case "${1:-}" in
fetch) fetch ;;
build) [ $# -eq 3 ] || die "usage: $0 build TARGET OUT"; build "$2" "$3" ;;
*) die "usage: $0 fetch | build TARGET OUT" ;;
esac
