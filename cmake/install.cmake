# What `cmake --install` puts where. Two shapes:
#  - pip install . (scikit-build-core sets SKBUILD): the library alone, into the Python package beside
#    fa2jit/_lib.py, which loads it from there;
#  - otherwise: the library, the public headers (include/fa2jit/ only), fa2-tune, and a CMake package,
#    so that find_package(fa2jit CONFIG REQUIRED) gives the imported target fa2jit::fa2jit.
# The installed library keeps the toolkit directory it linked NVRTC from as its RUNPATH, so it loads
# where the toolkit sits as on the build machine; LD_LIBRARY_PATH (searched first) or ld.so.conf name
# another. The driver needs nothing here: libcuda.so.1 is dlopen'ed at run time.
set_target_properties(fa2jit PROPERTIES INSTALL_RPATH_USE_LINK_PATH ON)

if(SKBUILD)
  install(TARGETS fa2jit LIBRARY DESTINATION fa2jit)
  return()
endif()

include(CMakePackageConfigHelpers)
set(FA2JIT_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/fa2jit)

install(TARGETS fa2jit EXPORT fa2jitTargets LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY ${CMAKE_SOURCE_DIR}/include/fa2jit DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
set_target_properties(fa2-tune PROPERTIES INSTALL_RPATH "$ORIGIN/../${CMAKE_INSTALL_LIBDIR}")
install(TARGETS fa2-tune RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

install(EXPORT fa2jitTargets NAMESPACE fa2jit:: DESTINATION ${FA2JIT_CMAKE_DIR})
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/fa2jitConfig.cmake.in
                              ${CMAKE_BINARY_DIR}/fa2jitConfig.cmake INSTALL_DESTINATION ${FA2JIT_CMAKE_DIR})
# 0.x releases change the C++ API between minor versions (the C ABI has its own number, FA2_ABI_VERSION).
write_basic_package_version_file(${CMAKE_BINARY_DIR}/fa2jitConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/fa2jitConfig.cmake ${CMAKE_BINARY_DIR}/fa2jitConfigVersion.cmake
        DESTINATION ${FA2JIT_CMAKE_DIR})
