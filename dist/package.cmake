# The Debian package: `cpack -G DEB` in a build configured with -DCMAKE_INSTALL_PREFIX=/usr
# (tools/package.sh does both). It holds exactly what `cmake --install` installs.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME metasync)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "metasync maintainers <root@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "sync certificate metadata between Sectigo Certificate Manager and Keyfactor Command")
# Lines as they read; CPack indents them and turns the empty line into " ." for dpkg.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
"metasync keeps custom fields such as owner, cost centre or ticket number in step
between Sectigo Certificate Manager and Keyfactor Command: one way (sctokf, kftosc)
or both ways against a baseline (sync), with a dry run, a journal of every write
(report, revert) and a read-only configuration check (check). The policy is in
editable Lua scripts.

The API simulator metasync-sim, for rehearsals, is in /usr/libexec/metasync.")
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "ca-certificates")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "bash-completion")
set(CPACK_STRIP_FILES ON)
# Dependencies: dpkg-shlibdeps (dpkg-dev, which build-essential pulls in) reads them from the
# binaries, with the versions the build linked against. Without it they are declared by hand:
# the runtime packages of Debian 12 for each library the binaries link (lua-cjson is linked
# statically; libmicrohttpd and GnuTLS are the simulator's).
# METASYNC_DEB_SHLIBDEPS=OFF takes the list even where dpkg-shlibdeps is there (a test of it).
find_program(METASYNC_DPKG_SHLIBDEPS dpkg-shlibdeps)
option(METASYNC_DEB_SHLIBDEPS "read the .deb's Depends from the binaries with dpkg-shlibdeps when it is there" ON)
if(METASYNC_DEB_SHLIBDEPS AND METASYNC_DPKG_SHLIBDEPS)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
else()
  set(_deps "libc6, liblua5.4-0, libcurl4, libpcre2-8-0, libedit2, libsqlite3-0")
  if(METASYNC_BUILD_SIM)
    string(APPEND _deps ", libmicrohttpd12, libgnutls30")
  endif()
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "${_deps}")
endif()
include(CPack)

# tools/package_test.sh in CTest as well (about 20 s alone: a build of its own for /usr, two
# cpack runs, the .deb unpacked and used), in a build directory of its own under this one so
# that build trees never share one.
add_test(NAME cli.package COMMAND ${PROJECT_SOURCE_DIR}/tools/package_test.sh)
set_tests_properties(cli.package PROPERTIES ENVIRONMENT "BUILD_DIR=${PROJECT_BINARY_DIR}/pkg"
                     TIMEOUT 300 PROCESSORS 2 LABELS package)
