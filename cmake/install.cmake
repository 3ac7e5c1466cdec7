# Installation: the program, the libraries with their public headers, the reference data and a
# CMake package (find_package(lutdose) -> lutdose::engine, lutdose::models; docs/architecture.md,
# "Using the installed library").
include(CMakePackageConfigHelpers)

set(LUTDOSE_INSTALL_DATADIR ${CMAKE_INSTALL_DATADIR}/lutdose)
set(LUTDOSE_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/lutdose)

set_target_properties(lutdose_engine PROPERTIES EXPORT_NAME engine)
set_target_properties(lutdose_models PROPERTIES EXPORT_NAME models)
install(TARGETS lutdose RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS lutdose_engine lutdose_models EXPORT lutdoseTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY engine/include/ models/include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.h")
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/generated/lutdose/version.h
              ${CMAKE_CURRENT_BINARY_DIR}/generated/lutdose/notice.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/lutdose)

install(DIRECTORY data/ DESTINATION ${LUTDOSE_INSTALL_DATADIR})
install(DIRECTORY models/files/ DESTINATION ${LUTDOSE_INSTALL_DATADIR}/models)
install(FILES LICENSE NOTICE DESTINATION ${LUTDOSE_INSTALL_DATADIR})

install(EXPORT lutdoseTargets NAMESPACE lutdose:: DESTINATION ${LUTDOSE_INSTALL_CMAKEDIR})
configure_package_config_file(cmake/lutdoseConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/lutdoseConfig.cmake
  INSTALL_DESTINATION ${LUTDOSE_INSTALL_CMAKEDIR}
  PATH_VARS LUTDOSE_INSTALL_DATADIR)
# 0.x: a minor version may change the API, so only the same minor version is compatible.
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/lutdoseConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/lutdoseConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/lutdoseConfigVersion.cmake
        DESTINATION ${LUTDOSE_INSTALL_CMAKEDIR})
